/**
 * Paces Shopify Admin API calls by the shop's cost-based leaky bucket (CONTRACTS.md §2).
 *
 * Every GraphQL answer, THROTTLED ones included, reports the bucket in
 * `extensions.cost.throttleStatus` (currentlyAvailable, maximumAvailable, restoreRate) and what
 * the query asked for (`requestedQueryCost`). The pacer keeps the latest reading, projects it
 * forward at the restore rate, and lets a request go only once the projected points cover it and
 * every request ahead of it. Each request's points are reserved from the moment it asks until its
 * answer brings a new reading, so the records of a batch, running side by side in one container,
 * take turns instead of all going at once and being throttled together.
 *
 * One pacer per Shopify transport, kept for the container's life, so every record a container
 * processes draws on the same estimate. Other containers do not share it, but their spending shows
 * in the readings (learnForeignRate) and a whole-shop pacer leaves it to them; a pacer given a share
 * (the deployed worker's containers) paces at that share. A THROTTLED answer still ends in a
 * RetryableError that the caller's retry policy (and its deadline) handles.
 */

/** What a Shopify answer says about the bucket. */
export interface BucketReading {
  currentlyAvailable: number;
  maximumAvailable?: number;
  /** Points per second. */
  restoreRate?: number;
  /** What the operation asked for; the bucket must hold this much for the query to run. */
  requestedQueryCost?: number;
  /** What it was charged: null when it did not run (THROTTLED); absent = assume requestedQueryCost. */
  actualQueryCost?: number | null;
}

export interface PacerOptions {
  /** Points assumed for an operation until an answer says what it costs. Default 10 (giftCardCreate). */
  defaultCost?: number;
  /**
   * Points that may go out before any answer has reported the bucket; later callers wait for that
   * first reading. Default two default-cost requests: one referral's two cards, so a fresh
   * container's first referral is not held back, while a whole batch does not go in blind.
   */
  initialAllowance?: number;
  /**
   * Longest one request waits for its turn, in ms (default 10 s). Past it the request goes anyway:
   * at worst Shopify answers THROTTLED, and the caller's retry policy, which knows the deadline, decides.
   */
  maxWaitMs?: number;
  /**
   * The part of the shop's budget this pacer may spend, 0 < share <= 1 (default 1): of the restore
   * rate and of the bucket (a part of its own, see keepOurPart). The worker runs up to N
   * containers, each with a pacer of its own; with 1 / N each, all of them together never aim at
   * more than the shop has (lib/infra/shop-sizing.ts), instead of each projecting the whole
   * bucket for itself and being THROTTLED together.
   */
  share?: number;
  now?: () => number;
  /** For tests with a fake clock; by default a timer that a new reading cuts short. */
  sleep?: (ms: number) => Promise<void>;
}

/** A reserved turn: hand it back to settle() with the answer's reading, whatever the outcome. */
export interface PacerPermit {
  readonly seq: number;
  readonly operation: string;
  readonly cost: number;
  /** How long acquire() held the request back. */
  readonly waitedMs: number;
}

export interface BucketEstimate {
  /** Points the bucket is projected to hold now, before the reservations below. */
  available: number;
  /** Points reserved by requests waiting for their turn or awaiting their answer. */
  reserved: number;
  maximumAvailable: number;
  /** As Shopify reports it. */
  restoreRate: number;
  /** Points/s others (other containers, other apps) are seen to spend; projections use restoreRate less this. */
  foreignRate: number;
  /** When the reading this projects from arrived (ms, from `now`). */
  at: number;
}

/** Permits handed out, how many of them waited and for how long in all (ms), and how many the maxWaitMs cap released. */
export interface PacerStats {
  permits: number;
  waited: number;
  waitedMs: number;
  capped: number;
}

/** Time constant of the smoothing of others' spending, ms: long enough to average out jitter. */
const FOREIGN_SMOOTHING_MS = 5_000;
/** Never assume others leave us less than this share of the restore rate. */
const MIN_SHARE = 0.05;

interface Base {
  available: number;
  /** 0 = not reported: no cap. */
  maximum: number;
  /** 0 = unknown: the bucket cannot be projected. */
  restoreRate: number;
  at: number;
  /** The latest-sent request that has reported: a higher reading from an earlier one is stale. */
  seq: number;
  /**
   * With a share below 1: our part of the bucket at `mineAt`, kept by our own spending rather than
   * re-read from each answer (see `ours`). Undefined until the first reading.
   */
  mine?: number;
  mineAt?: number;
}

export class ShopifyPacer {
  private readonly defaultCost: number;
  private readonly initialAllowance: number;
  private readonly maxWaitMs: number;
  private readonly share: number;
  private readonly now: () => number;
  private readonly injectedSleep?: (ms: number) => Promise<void>;
  private readonly costs = new Map<string, number>();
  /** seq → reserved points, for requests waiting or in flight; insertion order is seq order. */
  private readonly pending = new Map<number, number>();
  private base?: Base;
  /** Points/s spent by others, smoothed (learnForeignRate). */
  private foreignRate = 0;
  /** seq → points a sent request cost (undefined while in flight), for those sent since the base's. */
  private readonly spent = new Map<number, number | undefined>();
  private nextSeq = 1;
  private wakers = new Set<() => void>();
  private readonly counters: PacerStats = { permits: 0, waited: 0, waitedMs: 0, capped: 0 };

  public constructor(options: PacerOptions = {}) {
    this.defaultCost = options.defaultCost ?? 10;
    this.initialAllowance = options.initialAllowance ?? 2 * this.defaultCost;
    this.maxWaitMs = options.maxWaitMs ?? 10_000;
    const share = options.share ?? 1;
    this.share = Number.isFinite(share) && share > 0 ? Math.min(1, share) : 1;
    this.now = options.now ?? Date.now;
    this.injectedSleep = options.sleep;
  }

  /** The points an operation is expected to cost: the last requestedQueryCost seen for it. */
  public costOf(operation: string): number {
    return this.costs.get(operation) ?? this.defaultCost;
  }

  /** The bucket as the pacer sees it now; undefined until a first reading. */
  public get estimate(): BucketEstimate | undefined {
    const base = this.base;
    if (!base) return undefined;
    return {
      available: this.ours(base),
      reserved: sum(this.pending.values()),
      maximumAvailable: base.maximum * this.share,
      restoreRate: base.restoreRate,
      foreignRate: this.foreignRate,
      at: base.at,
    };
  }

  /**
   * How long until the bucket, as projected, holds `cost` points beyond every reservation: when a
   * request refused now (THROTTLED) would get its turn. Undefined before a reading or without a
   * restore rate; 0 when it would go now.
   */
  public refillMs(cost: number): number | undefined {
    const base = this.base;
    if (!base || base.restoreRate <= 0) return undefined;
    const short = sum(this.pending.values()) + cost - this.ours(base);
    return short <= 0 ? 0 : Math.ceil((short / this.effectiveRate(base)) * 1000);
  }

  public get stats(): PacerStats {
    return { ...this.counters };
  }

  /**
   * Waits until the projected bucket covers this request and every request ahead of it, then
   * returns its permit. Turns are taken in call order. Before any reading only the initial
   * allowance goes, and the others wait for an answer: a fresh container learns the bucket before
   * spending much of it.
   */
  public async acquire(operation: string): Promise<PacerPermit> {
    const cost = this.costOf(operation);
    const seq = this.nextSeq++;
    this.pending.set(seq, cost);
    const start = this.now();
    // Counted as well as timed, so a frozen clock cannot hold a request forever.
    let slept = 0;
    try {
      for (;;) {
        const delay = this.delayFor(seq);
        if (delay === 0) break;
        const remaining = this.maxWaitMs - Math.max(this.now() - start, slept);
        if (remaining <= 0) {
          this.counters.capped++;
          break;
        }
        const step = Math.min(delay ?? remaining, remaining);
        if (await this.pause(step)) slept += step;
      }
    } catch (error) {
      this.pending.delete(seq);
      throw error;
    }
    const waitedMs = Math.max(0, this.now() - start);
    this.spent.set(seq, undefined);
    this.counters.permits++;
    if (waitedMs > 0 || slept > 0) {
      this.counters.waited++;
      this.counters.waitedMs += waitedMs;
    }
    return { seq, operation, cost, waitedMs };
  }

  /**
   * Ends a permit's reservation. A reading lower than the current projection always replaces it:
   * it is a real level, and any of our requests it does not reflect are either still reserved or
   * reported later. A higher one replaces it only if no request sent after this one has reported
   * yet: requests reach Shopify out of order (a new connection is slower than a warm one), and an
   * older state must not undo a newer one. Without a reading (network error, timeout, an answer
   * without cost data) the request may still have run, so its points count as spent.
   */
  public settle(permit: PacerPermit, reading?: BucketReading): void {
    if (!this.pending.delete(permit.seq)) return;
    const base = this.base;
    const now = this.now();
    // Our part before this request's points come off it (they were reserved, not yet spent).
    const mineBefore = base?.mine !== undefined ? this.ours(base, now) : undefined;
    const hasReading = reading !== undefined && Number.isFinite(reading.currentlyAvailable);
    const charged = !hasReading
      ? permit.cost
      : reading.actualQueryCost === null
        ? 0
        : (reading.actualQueryCost ?? reading.requestedQueryCost ?? permit.cost);
    if (this.spent.has(permit.seq)) this.spent.set(permit.seq, charged);
    if (hasReading) {
      if (isPositive(reading.requestedQueryCost)) this.costs.set(permit.operation, reading.requestedQueryCost);
      const maximum = isPositive(reading.maximumAvailable) ? reading.maximumAvailable : (base?.maximum ?? 0);
      const restoreRate = isPositive(reading.restoreRate) ? reading.restoreRate : (base?.restoreRate ?? 0);
      const level = reading.currentlyAvailable;
      const newer = !base || permit.seq > base.seq;
      if (base && newer) this.learnForeignRate(base, permit.seq, level, now);
      if (!base || newer || level < this.projected(base, now)) {
        this.base = { available: level, maximum, restoreRate, at: now, seq: Math.max(base?.seq ?? 0, permit.seq) };
      } else {
        // An older state than the one we hold, but the bucket's size and restore rate are still news.
        this.base = { ...base, maximum, restoreRate };
      }
    } else if (base) {
      this.base = { ...base, available: this.projected(base, now) - permit.cost, at: now, seq: Math.max(base.seq, permit.seq) };
    }
    if (this.share < 1 && this.base) this.keepOurPart(mineBefore, charged, hasReading ? reading.currentlyAvailable : undefined, now);
    // Requests up to the base's are in its reading: learnForeignRate never looks at them again.
    const upTo = this.base?.seq ?? 0;
    for (const seq of this.spent.keys()) if (seq <= upTo) this.spent.delete(seq);
    for (const wake of [...this.wakers]) wake();
  }

  /**
   * A share below 1 is a part of the bucket of our own: taken from the first reading, then
   * debited with what our requests cost and refilled at our rate, never raised by a reading. A
   * reading reflects the others' requests only once they have run, so taking the share of each
   * reading anew would also spend what the others have in flight; kept this way, the parts add up
   * to at most the bucket and a request that fits ours finds the points there. A reading below our
   * part means someone spends beyond theirs: we then take our share of what is left.
   */
  private keepOurPart(mineBefore: number | undefined, charged: number, level: number | undefined, now: number): void {
    const base = this.base as Base;
    let mine = mineBefore === undefined ? (level === undefined ? undefined : this.share * level) : mineBefore - charged;
    if (mine !== undefined && level !== undefined && level < mine) mine = this.share * level;
    this.base = { ...base, mine, mineAt: mine === undefined ? undefined : now };
  }

  /**
   * From the previous reading, the bucket should now hold its level plus restore × elapsed, less
   * what our requests sent in between cost. A shortfall is others' spending; it is smoothed over
   * FOREIGN_SMOOTHING_MS, and an excess (our timing is only approximate) pulls it back down.
   */
  private learnForeignRate(previous: Base, seq: number, level: number, now: number): void {
    const elapsed = now - previous.at;
    if (elapsed <= 0 || previous.restoreRate <= 0) return;
    let ours = 0;
    for (const [s, cost] of this.spent) {
      if (s <= previous.seq || s > seq) continue;
      // One of ours sent before this one has not answered: it may or may not be in this level.
      if (cost === undefined) return;
      ours += cost;
    }
    const expected = previous.available + (elapsed / 1000) * previous.restoreRate;
    // A bucket that may have topped out says nothing about spending.
    if (previous.maximum > 0 && expected >= previous.maximum) return;
    const sample = (expected - ours - level) / (elapsed / 1000);
    const weight = 1 - Math.exp(-elapsed / FOREIGN_SMOOTHING_MS);
    const ceiling = previous.restoreRate * (1 - MIN_SHARE);
    this.foreignRate = Math.min(ceiling, Math.max(0, this.foreignRate + weight * (sample - this.foreignRate)));
  }

  /** 0: go now; a number: ms until the projection says go; undefined: wait for the next reading. */
  private delayFor(seq: number): number | undefined {
    let ahead = 0;
    let othersAhead = false;
    for (const [s, cost] of this.pending) {
      if (s > seq) break;
      ahead += cost;
      if (s < seq) othersAhead = true;
    }
    const base = this.base;
    if (!base) return !othersAhead || ahead <= this.initialAllowance ? 0 : undefined;
    // Without a restore rate nothing can be projected: let Shopify's answer decide.
    if (base.restoreRate <= 0) return 0;
    const available = this.ours(base);
    // A full bucket will not get fuller: go even if the queue ahead asks for more than it holds.
    if (base.maximum > 0 && available >= base.maximum * this.share) return 0;
    const short = ahead - available;
    if (short <= 0) return 0;
    return Math.max(1, Math.ceil((short / this.effectiveRate(base)) * 1000));
  }

  /**
   * The restore rate left to us. With a share below 1, exactly that share of Shopify's: the other
   * containers hold the rest, each its own part of the bucket (keepOurPart), and no other app draws
   * on it ("each app has access to a bucket", https://shopify.dev/docs/api/usage/limits; per app and
   * shop for the GraphQL Admin API, https://community.shopify.com/t/graphql-admin-api-rate-limit/13729).
   * Their bursts of their own part, taken off ours as spending, held every container at a few
   * points/s until the smoothing forgot them. A whole-shop pacer leaves others what they are seen to spend.
   */
  private effectiveRate(base: Base, share = this.share): number {
    if (share < 1) return base.restoreRate * share;
    return Math.max(base.restoreRate * MIN_SHARE, base.restoreRate - this.foreignRate);
  }

  /** The shop's bucket, projected from the reading at the whole shop's rate: what settle compares new readings with. */
  private projected(base: Base, now = this.now()): number {
    return refilled(base.available, base.at, this.effectiveRate(base, 1), base.maximum, now);
  }

  /** Our part of it, refilled at our rate, up to our share of the bucket: all of it with a share of 1. */
  private ours(base: Base, now = this.now()): number {
    const rate = this.effectiveRate(base);
    const maximum = base.maximum * this.share;
    if (base.mine !== undefined && base.mineAt !== undefined) return refilled(base.mine, base.mineAt, rate, maximum, now);
    return refilled(base.available * this.share, base.at, rate, maximum, now);
  }

  /** Sleeps `ms` or until the next reading; true when the full time passed. */
  private pause(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = () => {
        if (timer) clearTimeout(timer);
        this.wakers.delete(wake);
        resolve(false);
      };
      this.wakers.add(wake);
      const done = () => {
        if (this.wakers.delete(wake)) resolve(true);
      };
      if (this.injectedSleep) this.injectedSleep(ms).then(done, done);
      else timer = setTimeout(done, ms);
    });
  }
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/** `level` at `at`, refilled at `rate` points/s until `now`, up to `maximum` (0: no cap). */
function refilled(level: number, at: number, rate: number, maximum: number, now: number): number {
  const filled = level + (Math.max(0, now - at) / 1000) * rate;
  return maximum > 0 ? Math.min(maximum, filled) : filled;
}

function isPositive(value: number | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}
