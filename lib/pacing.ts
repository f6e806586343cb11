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
 * One pacer per ShopifyClient, and the worker keeps its clients for the life of the container, so
 * every record a container processes draws on the same estimate. Containers do not share one: each
 * learns what the others spend from the readings, and a THROTTLED answer still ends in a
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
}

export interface PacerOptions {
  /** Points assumed for an operation until an answer says what it costs. Default 10 (giftCardCreate). */
  defaultCost?: number;
  /**
   * Longest one request waits for its turn, in ms (default 10 s). Past it the request goes anyway:
   * at worst Shopify answers THROTTLED, and the caller's retry policy, which knows the deadline, decides.
   */
  maxWaitMs?: number;
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
  restoreRate: number;
  /** When the reading this projects from arrived (ms, from `now`). */
  at: number;
}

export interface PacerStats {
  /** Permits handed out. */
  permits: number;
  /** Permits that had to wait. */
  waited: number;
  /** Total time spent waiting, ms. */
  waitedMs: number;
  /** Permits released by the maxWaitMs cap rather than by the estimate. */
  capped: number;
}

export const DEFAULT_OPERATION_COST = 10;
export const DEFAULT_MAX_WAIT_MS = 10_000;

interface Base {
  available: number;
  /** 0 = not reported: no cap. */
  maximum: number;
  /** 0 = unknown: the bucket cannot be projected. */
  restoreRate: number;
  at: number;
  /** The request whose answer this is: an older request's reading arriving later is stale. */
  seq: number;
}

export class ShopifyPacer {
  private readonly defaultCost: number;
  private readonly maxWaitMs: number;
  private readonly now: () => number;
  private readonly injectedSleep?: (ms: number) => Promise<void>;
  private readonly costs = new Map<string, number>();
  /** seq → reserved points, for requests waiting or in flight; insertion order is seq order. */
  private readonly pending = new Map<number, number>();
  private base?: Base;
  private nextSeq = 1;
  private wakers = new Set<() => void>();
  private readonly counters: PacerStats = { permits: 0, waited: 0, waitedMs: 0, capped: 0 };

  public constructor(options: PacerOptions = {}) {
    this.defaultCost = options.defaultCost ?? DEFAULT_OPERATION_COST;
    this.maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
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
      available: this.projected(base),
      reserved: sum(this.pending.values()),
      maximumAvailable: base.maximum,
      restoreRate: base.restoreRate,
      at: base.at,
    };
  }

  public get stats(): PacerStats {
    return { ...this.counters };
  }

  /**
   * Waits until the projected bucket covers this request and every request ahead of it, then
   * returns its permit. Turns are taken in call order. Before any reading only one request goes,
   * and the others wait for its answer: a fresh container learns the bucket before spending it.
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
    this.counters.permits++;
    if (waitedMs > 0 || slept > 0) {
      this.counters.waited++;
      this.counters.waitedMs += waitedMs;
    }
    return { seq, operation, cost, waitedMs };
  }

  /**
   * Ends a permit's reservation. With a reading, the bucket is re-based on it (unless a request
   * sent later has already reported: then this one is stale). Without one (network error, timeout,
   * an answer without cost data) the request may still have run, so its points count as spent.
   */
  public settle(permit: PacerPermit, reading?: BucketReading): void {
    if (!this.pending.delete(permit.seq)) return;
    const base = this.base;
    if (reading && Number.isFinite(reading.currentlyAvailable)) {
      if (isPositive(reading.requestedQueryCost)) this.costs.set(permit.operation, reading.requestedQueryCost);
      const maximum = isPositive(reading.maximumAvailable) ? reading.maximumAvailable : (base?.maximum ?? 0);
      const restoreRate = isPositive(reading.restoreRate) ? reading.restoreRate : (base?.restoreRate ?? 0);
      if (!base || permit.seq > base.seq) {
        this.base = { available: reading.currentlyAvailable, maximum, restoreRate, at: this.now(), seq: permit.seq };
      } else {
        // Stale level, but the bucket's size and restore rate are still news.
        this.base = { ...base, maximum, restoreRate };
      }
    } else if (base && permit.seq > base.seq) {
      const now = this.now();
      this.base = { ...base, available: this.projected(base, now) - permit.cost, at: now, seq: permit.seq };
    }
    this.wakeAll();
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
    if (!base) return othersAhead ? undefined : 0;
    // Without a restore rate nothing can be projected: let Shopify's answer decide.
    if (base.restoreRate <= 0) return 0;
    const available = this.projected(base);
    // A full bucket will not get fuller: go even if the queue ahead asks for more than it holds.
    if (base.maximum > 0 && available >= base.maximum) return 0;
    const short = ahead - available;
    if (short <= 0) return 0;
    return Math.max(1, Math.ceil((short / base.restoreRate) * 1000));
  }

  private projected(base: Base, now = this.now()): number {
    const level = base.available + (Math.max(0, now - base.at) / 1000) * base.restoreRate;
    return base.maximum > 0 ? Math.min(base.maximum, level) : level;
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
        if (!this.wakers.delete(wake)) return;
        resolve(true);
      };
      if (this.injectedSleep) {
        this.injectedSleep(ms).then(done, done);
      } else {
        timer = setTimeout(done, ms);
      }
    });
  }

  private wakeAll(): void {
    const wakers = [...this.wakers];
    for (const wake of wakers) wake();
  }
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

function isPositive(value: number | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}
