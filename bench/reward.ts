/**
 * 5. Time to reward, and the shop's budget used at the sized concurrency. Round trips as from AWS:
 * Shopify 300 ms, Customer.io 150 ms (the fakes' latency), DynamoDB 5 ms (added to every ledger
 * call). Time to reward runs from ingest's answer to the referral's COMPLETED write.
 *
 * - idle: one referral at a time, a worker container polling as the event source mapping does.
 * - claim contention: referral B meets the redeemer claimed by referral A, still undecided (A is
 *   held just before its decision until B has failed once; A is then refused for its referrer's
 *   cap and gives the claim back). B is paid when SQS brings it back: the wait the worker set for
 *   that cause (lib/infra/redelivery.ts), where the queue's visibility timeout alone took 360 s.
 * - budget per plan: a backlog drained by the containers lib/infra/shop-sizing.ts gives the plan,
 *   each pacing to its share (WORKER_MAX_CONCURRENCY), against a fake bucket with the plan's restore
 *   rate; referrals/s over the run beside the most the bucket allows in that time.
 */
import { randomUUID } from 'node:crypto';
import type { Ledger } from '../lib/adapters/dynamodb/ledger';
import type { Checkpoint } from '../lib/domain/rewards';
import { SHOPIFY_PLAN_RESTORE_RATES, sizeForShop } from '../lib/infra/shop-sizing';
import { captureOutput, progress } from './logs';
import type { Row, SectionResult } from './report';
import { BenchStack, REFERRAL_SIGNING_KEY, referralBody, type Emulators, type WorkerContainer } from './stack';
import { signWebhookBody } from '../local/vouch';
import { fmt, fmtInt, nowMs, percentile, sleep } from './stats';

const SECTION = '5. Time to reward';
export const ROUND_TRIPS = { shopifyMs: 300, customerioMs: 150, dynamodbMs: 5 };
/** Quick mode (the smoke test): a tenth, so the section takes seconds; its figures are not the point. */
const QUICK_ROUND_TRIPS = { shopifyMs: 30, customerioMs: 15, dynamodbMs: 1 };
type RoundTrips = typeof ROUND_TRIPS;
const DEPLOYED_VISIBILITY_SECONDS = 360;
const PLANS = ['standard', 'advanced', 'plus', 'commerce_components'] as const;

type Marks = Map<string, Partial<Record<Checkpoint, number>>>;

interface Options {
  quick: boolean;
  trips?: RoundTrips;
}

export async function benchReward(emulators: Emulators, opts: Options): Promise<SectionResult> {
  const options: Required<Options> = { ...opts, trips: opts.trips ?? (opts.quick ? QUICK_ROUND_TRIPS : ROUND_TRIPS) };
  const trips = options.trips;
  const release = captureOutput();
  try {
    const idle = await timeToRewardIdle(emulators, options);
    const contention = await timeToRewardUnderContention(emulators, options);
    const rows: Row[] = [
      {
        id: 'reward.idle.p50',
        section: SECTION,
        measure: `idle, one referral at a time: time to reward p50 (n=${idle.samples.length})`,
        value: `${fmtInt(percentile(idle.samples, 50))} ms`,
        reference: `Shopify + Customer.io round trips: ${trips.shopifyMs + trips.customerioMs} ms`,
        ratio: percentile(idle.samples, 50) / (trips.shopifyMs + trips.customerioMs),
        target: '≤ 1.2',
        holds: percentile(idle.samples, 50) <= 1.2 * (trips.shopifyMs + trips.customerioMs),
      },
      {
        id: 'reward.idle.p99',
        section: SECTION,
        measure: `idle: time to reward p99 (n=${idle.samples.length})`,
        value: `${fmtInt(percentile(idle.samples, 99))} ms`,
        reference: `Shopify + Customer.io round trips: ${trips.shopifyMs + trips.customerioMs} ms`,
        ratio: percentile(idle.samples, 99) / (trips.shopifyMs + trips.customerioMs),
      },
      ...(['p50', 'p99'] as const).map((p): Row => {
        const value = percentile(contention.samples, p === 'p50' ? 50 : 99);
        const reference = DEPLOYED_VISIBILITY_SECONDS * 1000 + percentile(idle.samples, 50);
        return {
          id: `reward.contention.${p}`,
          section: SECTION,
          measure: `waiting on another referral's undecided claim: time to reward ${p} (n=${contention.samples.length}, queue visibility ${contention.visibilitySeconds} s)`,
          value: `${fmt(value / 1000, 1)} s`,
          reference: `the queue's ${DEPLOYED_VISIBILITY_SECONDS} s visibility timeout + idle p50: ${fmt(reference / 1000, 1)} s`,
          ratio: value / reference,
          ...(p === 'p99' && !options.quick ? { target: '≤ 30 s (absolute)', holds: value <= 30_000 } : {}),
        };
      }),
    ];
    const notes = [
      `Round trips injected: Shopify ${trips.shopifyMs} ms, Customer.io ${trips.customerioMs} ms, DynamoDB ${trips.dynamodbMs} ms per ledger call; time to reward runs from ingest's 202 to the COMPLETED write.`,
      `Claim contention: the waiting referral is set to come back in 2–10 s (lib/infra/redelivery.ts); its time to reward is that wait plus one processing, where main waited the queue's ${DEPLOYED_VISIBILITY_SECONDS} s visibility timeout.` +
        (options.quick ? ' Quick mode: round trips a tenth of these, the wait capped by a 1 s queue visibility timeout.' : ''),
    ];
    let lost = idle.lost + contention.lost;
    let calls = 0;
    let throttled = 0;
    for (const plan of PLANS) {
      const run = await budgetForPlan(emulators, plan, options);
      lost += run.lost;
      calls += run.calls;
      throttled += run.throttled;
      rows.push(planRow(run));
      notes.push(planNote(run));
      if (run.burst) rows.push(...burstRows(run, trips));
    }
    rows.push({
      id: 'reward.budget.throttled',
      section: SECTION,
      measure: `THROTTLED replies per 100 Shopify calls, all four plans`,
      value: `${fmt((100 * throttled) / Math.max(1, calls), 2)} (${fmtInt(throttled)} of ${fmtInt(calls)})`,
      reference: 'per 100 calls',
      target: '≤ 1 per 100',
      holds: 100 * throttled <= calls,
    });
    const outage = await rewardAfterOutage(emulators, options);
    lost += outage.lost;
    rows.push(...outageRows(outage));
    notes.push(
      `Outage: Shopify answered every request HTTP 503 (Retry-After: 1) for ${fmt(outage.outageSeconds, 0)} s; ${outage.referrals} referrals were sent during it (half at its start, half halfway), to ${outage.containers} containers polling throughout, the queue's visibility timeout ${outage.visibilitySeconds} s. ` +
        `Receives: ${outage.receives}; ${outage.failed} recorded FAILED (the queue's last receive) and dead-lettered.`,
    );
    // Quick mode's figures exercise the path only (a handful of referrals, a tenth of the round trips).
    if (options.quick) {
      for (const row of rows) {
        delete row.target;
        delete row.holds;
      }
    }
    return { rows, notes, lost };
  } finally {
    release();
  }
}

async function startStack(
  emulators: Emulators,
  options: {
    trips: RoundTrips;
    visibilitySeconds?: number;
    env?: Record<string, string>;
    bucket?: { size: number; restoreRate: number };
    onCard?: () => void;
  },
  marks: Marks,
) {
  const trips = options.trips;
  const stack = await BenchStack.start(emulators, {
    shopify: {
      latencyMs: trips.shopifyMs,
      ...(options.bucket ? { bucket: options.bucket } : {}),
      ...(options.onCard ? { onCard: options.onCard } : {}),
    },
    customerio: { latencyMs: trips.customerioMs },
    ...(options.visibilitySeconds ? { visibilityTimeoutSeconds: options.visibilitySeconds } : {}),
    ...(options.env ? { env: options.env } : {}),
    checkpoint: (step, eventId) => {
      const entry = marks.get(eventId) ?? {};
      entry[step] ??= nowMs();
      marks.set(eventId, entry);
    },
  });
  // Every ledger call (the worker's and the verification's) pays an in-region DynamoDB round trip.
  stack.dynamo.middlewareStack.add(
    (next) => async (args) => {
      await sleep(trips.dynamodbMs);
      return next(args);
    },
    { step: 'initialize', name: 'benchDynamoRoundTrip' },
  );
  return stack;
}

/** Polls as the event source mapping does (a receive as soon as the last batch is done), until stopped. */
function keepPolling(pollOnce: () => Promise<number>): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) if ((await pollOnce()) === 0) await sleep(10);
  })();
  return async () => {
    running = false;
    await loop;
  };
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`bench: ${what} did not happen within ${timeoutMs} ms`);
    await sleep(10);
  }
}

async function ingestAll(stack: BenchStack, bodies: string[]): Promise<void> {
  for (const body of bodies) {
    const answer = await stack.ingest(body);
    if (answer.statusCode !== 202) throw new Error(`ingest answered ${answer.statusCode}`);
  }
}

function body(uuid: string, referrer: string, redeemer: string): string {
  const base = JSON.parse(referralBody(uuid).body) as {
    event: { properties: Record<string, string>; distinct_id: string };
    person: { properties: { email: string } };
  };
  base.event.properties.referrer_email = referrer;
  base.event.properties.redeemer_email = redeemer;
  base.event.distinct_id = redeemer;
  base.person.properties.email = redeemer;
  // Other people than referralBody signed for: signed again, as the app would sign this referral.
  delete base.event.properties.referral_signature;
  return JSON.stringify(signWebhookBody(base, REFERRAL_SIGNING_KEY));
}

async function timeToRewardIdle(emulators: Emulators, options: Required<Options>): Promise<{ samples: number[]; lost: number }> {
  const marks: Marks = new Map();
  const stack = await startStack(emulators, { trips: options.trips }, marks);
  const container = stack.container();
  const stop = keepPolling(() => container.pollOnce());
  const samples: number[] = [];
  let lost = 0;
  try {
    const count = options.quick ? 2 : 30;
    progress(`time to reward, idle: ${count} referrals one at a time`);
    for (let i = 0; i < count + 1; i++) {
      const { uuid, body: text } = referralBody();
      const sent = nowMs();
      await ingestAll(stack, [text]);
      await waitFor(() => marks.get(uuid)?.completed !== undefined, 30_000, `referral ${uuid} paid`);
      // The first one warms the container (clients, token, connections), as a cold start would not count here.
      if (i > 0) samples.push((marks.get(uuid)?.completed ?? Number.NaN) - sent);
      if ((await stack.ledger.get(uuid))?.status !== 'COMPLETED') lost++;
    }
  } finally {
    await stop();
    await stack.stop();
  }
  return { samples, lost };
}

async function timeToRewardUnderContention(
  emulators: Emulators,
  options: Required<Options>,
): Promise<{ samples: number[]; lost: number; visibilitySeconds: number }> {
  const marks: Marks = new Map();
  const visibilitySeconds = options.quick ? 1 : DEPLOYED_VISIBILITY_SECONDS;
  const stack = await startStack(emulators, { trips: options.trips, visibilitySeconds, env: { MAX_REWARDS_PER_REFERRER: '1' } }, marks);
  const pairs = options.quick ? 2 : 10;
  // A's decision waits for B's first failure: the moment B has met A's claim undecided.
  const gates = new Map<string, { reached: Promise<void>; reach: () => void; allowed: Promise<void>; allow: () => void }>();
  const waiterOf = new Map<string, string>();
  const gate = () => {
    let reach!: () => void;
    let allow!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const allowed = new Promise<void>((resolve) => (allow = resolve));
    return { reached, reach, allowed, allow };
  };
  // The verdict's write (decide) waits at its gate; a release (lib/domain/steps.ts) opens its waiter's.
  const ledger = stack.ledger;
  const gated = Object.assign(Object.create(ledger) as Ledger, {
    write: async (...args: Parameters<Ledger['write']>) => {
      const [eventId, , change] = args;
      const held = change.step === 'decide' ? gates.get(eventId) : undefined;
      if (held) {
        held.reach();
        await held.allowed;
      }
      const written = await ledger.write(...args);
      const holder = change.step === 'release' ? waiterOf.get(eventId) : undefined;
      if (holder) gates.get(holder)?.allow();
      return written;
    },
  });
  const container = stack.container({ ledger: gated });
  // One more container than pairs: every batch of A's held at its decision can hold one, and one
  // is always left to receive the B's that meet their claims.
  const stops = Array.from({ length: pairs + 1 }, () => keepPolling(() => container.pollOnce()));
  const samples: number[] = [];
  let lost = 0;
  try {
    progress(
      `time to reward under claim contention: ${pairs} referrals waiting on another's undecided claim (queue visibility ${visibilitySeconds} s)`,
    );
    const run = Math.random().toString(36).slice(2, 8);
    // Each capped referrer's one slot used by a paid referral first.
    const seeds = Array.from({ length: pairs }, (_, i) => ({
      uuid: randomUUID(),
      referrer: `capped-${run}-${i}@example.com`,
      redeemer: `first-${run}-${i}@example.com`,
    }));
    await ingestAll(
      stack,
      seeds.map((seed) => body(seed.uuid, seed.referrer, seed.redeemer)),
    );
    await waitFor(() => seeds.every((seed) => marks.get(seed.uuid)?.completed !== undefined), 60_000, 'the capped referrers paid once');
    const holders = seeds.map((seed, i) => ({ uuid: randomUUID(), referrer: seed.referrer, redeemer: `shared-${run}-${i}@example.com` }));
    const waiters = holders.map((holder, i) => ({
      uuid: randomUUID(),
      referrer: `eligible-${run}-${i}@example.com`,
      redeemer: holder.redeemer,
    }));
    holders.forEach((holder, i) => {
      gates.set(holder.uuid, gate());
      waiterOf.set(waiters[i]!.uuid, holder.uuid);
    });
    await ingestAll(
      stack,
      holders.map((h) => body(h.uuid, h.referrer, h.redeemer)),
    );
    await Promise.all(holders.map((h) => gates.get(h.uuid)!.reached));
    const sent = new Map<string, number>();
    for (const waiter of waiters) {
      sent.set(waiter.uuid, nowMs());
      await ingestAll(stack, [body(waiter.uuid, waiter.referrer, waiter.redeemer)]);
    }
    await waitFor(
      () => waiters.every((w) => marks.get(w.uuid)?.completed !== undefined),
      visibilitySeconds * 1000 + 120_000,
      'every waiting referral paid',
    );
    for (const waiter of waiters) samples.push((marks.get(waiter.uuid)?.completed ?? Number.NaN) - (sent.get(waiter.uuid) ?? Number.NaN));
    for (const [i, waiter] of waiters.entries()) {
      const paid =
        (await stack.ledger.get(waiter.uuid))?.status === 'COMPLETED' &&
        stack.shopify.cards.filter((card) => card.note?.includes(waiter.uuid)).length === 2;
      const refused =
        (await stack.ledger.get(holders[i]!.uuid))?.status === 'REJECTED' &&
        !stack.shopify.cards.some((card) => card.note?.includes(holders[i]!.uuid));
      if (!paid || !refused) lost++;
    }
  } finally {
    for (const gateOf of gates.values()) gateOf.allow();
    await Promise.all(stops.map((stop) => stop()));
    await stack.stop();
  }
  return { samples, lost, visibilitySeconds };
}

/** Plans faster than this many points/s run with time scaled (see budgetForPlan). */
const SCALE_ABOVE_POINTS_PER_SECOND = 200;
/** The plan whose run is the 1,000-referral burst (time to reward beside the budget's floor). */
const BURST_PLAN: (typeof PLANS)[number] = 'advanced';
const BURST_REFERRALS = 1_000;
/** Seconds of restore a plan's backlog holds beyond the bucket's burst (unscaled plans). */
const RESTORE_SECONDS = 20;

interface PlanRun {
  plan: (typeof PLANS)[number];
  /** The plan's, points/s (what the shop has; the run used restoreRate / scale). */
  restoreRate: number;
  bucket: number;
  /** Time runs this many times slower than in AWS: round trips × scale, restore and bucket ÷ scale. */
  scale: number;
  containers: number;
  referrals: number;
  /** From the first card to the last, in the plan's time (the run's ÷ scale). */
  seconds: number;
  /** From the first poll to the last referral completed: the same, with the first referral's way to its first card and the last one's Customer.io event. */
  wholeRun: { seconds: number; ratio: number };
  /** Records of each invocation, by container. */
  batches: number[][];
  rate: number;
  max: number;
  calls: number;
  throttled: number;
  lost: number;
  /** The bench process's CPU over the drain ÷ its wall time (2 cores: up to 2). */
  cpuShare: number;
  /** Time to reward of each referral in the plan's time, ms, when this run is the burst. */
  burst?: number[];
}

/**
 * A backlog drained by the containers lib/infra/shop-sizing.ts gives the plan, each told the
 * concurrency (its pacer's share), warmed first with one referral each as a running container
 * would be (clients, token, the shop's currency, connections), the shop's bucket full again after.
 *
 * The backlog is whole batches for every container: a backlog that does not divide so ends with
 * some containers idle while the others finish their last batch at their share of the rate, a fixed
 * cost per backlog (one batch's time at 1/N of the budget: about 4 s on a standard shop), not a loss
 * of rate; the notes in docs/PERFORMANCE.md give it.
 *
 * Plus and Commerce Components need 50 and 100 referrals/s, each referral ~10 ms of this process's
 * CPU (the SDK clients, the fakes, fauxqs's and dynalite's clients) on 2 cores that other work
 * shares: in real time they measure this machine. They run with time scaled by restore ÷ 200: round
 * trips that many times longer, the restore rate that many times smaller, the containers and
 * shares the plan's own, the bucket's points (a count, not a rate) as they are; every rate and wait
 * keeps its proportion, and the figures are given back in the plan's time.
 */
export async function budgetForPlan(emulators: Emulators, plan: (typeof PLANS)[number], options: Required<Options>): Promise<PlanRun> {
  const restoreRate = SHOPIFY_PLAN_RESTORE_RATES[plan];
  // As deployed: the containers the sizing gives this plan, each told so (its pacer's share).
  const { maximumConcurrency: containers } = sizeForShop({ restoreRate, batchSize: 10 });
  // Shopify documents the restore rates, not every plan's bucket: 1,000 points (standard), or two
  // seconds' worth where that is more (Plus: 2,000), as ../shared/CONTRACTS.md has them.
  const bucket = Math.max(1_000, 2 * restoreRate);
  const scale = options.quick ? 1 : Math.max(1, restoreRate / SCALE_ABOVE_POINTS_PER_SECOND);
  const burst = plan === BURST_PLAN;
  // The bucket's burst and 20 s of restore (10 s when scaled, which takes 10 × scale s here), in whole batches.
  const wanted = bucket / 20 + (restoreRate / 20) * (scale > 1 ? RESTORE_SECONDS / 2 : RESTORE_SECONDS);
  const perRound = containers * 10;
  // Quick: a handful, only to exercise the path (the figure is then the bucket's burst, not the budget).
  const referrals = burst ? (options.quick ? 20 : BURST_REFERRALS) : options.quick ? 4 : Math.ceil(wanted / perRound) * perRound;
  const trips = {
    shopifyMs: options.trips.shopifyMs * scale,
    customerioMs: options.trips.customerioMs * scale,
    dynamodbMs: options.trips.dynamodbMs * scale,
  };
  const marks: Marks = new Map();
  const cardTimes: number[] = [];
  const stack = await startStack(
    emulators,
    {
      trips,
      env: { WORKER_MAX_CONCURRENCY: String(containers) },
      bucket: { size: bucket, restoreRate: restoreRate / scale },
      onCard: () => cardTimes.push(nowMs()),
    },
    marks,
  );
  let lost = 0;
  try {
    progress(`budget, ${plan}: ${referrals} referrals, ${containers} containers${scale > 1 ? `, time scaled ×${scale}` : ''}`);
    const pool: WorkerContainer[] = Array.from({ length: containers }, () => stack.container());
    await warm(stack, pool, marks);
    cardTimes.length = 0;
    const uuids: string[] = [];
    const sent = new Map<string, number>();
    for (let i = 0; i < referrals; i++) {
      const { uuid, body: text } = referralBody();
      uuids.push(uuid);
      await ingestAll(stack, [text]);
      sent.set(uuid, nowMs());
    }
    const cpu = process.cpuUsage();
    const start = nowMs();
    await stack.drain(pool, () => uuids.every((uuid) => marks.get(uuid)?.completed !== undefined), 600_000);
    const end = Math.max(...uuids.map((uuid) => marks.get(uuid)?.completed ?? Number.NaN));
    const used = process.cpuUsage(cpu);
    const wall = end - start;
    // The budget is spent from the first card to the last; before it the first referral is on its
    // way (receive, ledger, one Shopify round trip), after it the last one's Customer.io event.
    const spending = (Math.max(...cardTimes) - Math.min(...cardTimes)) / 1000 / scale;
    const seconds = wall / 1000 / scale;
    for (const uuid of uuids) if ((await stack.ledger.get(uuid))?.status !== 'COMPLETED') lost++;
    if (stack.shopify.cards.length !== 2 * referrals) lost = Math.max(lost, 1);
    return {
      plan,
      restoreRate,
      bucket,
      scale,
      containers,
      referrals,
      seconds: spending,
      rate: referrals / spending,
      max: (bucket + restoreRate * spending) / (20 * spending),
      batches: pool.map((container) => container.invocations.map((invocation) => invocation.records)),
      wholeRun: { seconds, ratio: referrals / seconds / ((bucket + restoreRate * seconds) / (20 * seconds)) },
      calls: stack.shopify.requests.length,
      throttled: stack.shopify.throttledCount,
      lost,
      cpuShare: (used.user + used.system) / 1000 / wall,
      ...(burst
        ? { burst: uuids.map((uuid) => ((marks.get(uuid)?.completed ?? Number.NaN) - (sent.get(uuid) ?? Number.NaN)) / scale) }
        : {}),
    };
  } finally {
    await stack.stop();
  }
}

/**
 * One referral through each container in turn, so every one has built its clients and read the
 * shop before the backlog; the shop is then reset (bucket full, no cards, no requests counted).
 */
async function warm(stack: BenchStack, pool: WorkerContainer[], marks: Marks): Promise<void> {
  const polls: Promise<void>[] = [];
  const uuids: string[] = [];
  for (const container of pool) {
    const { uuid, body: text } = referralBody();
    uuids.push(uuid);
    await ingestAll(stack, [text]);
    // Only this container receives it: the next one is sent once it is in flight.
    polls.push(
      (async () => {
        while ((await container.pollOnce()) === 0) await sleep(5);
      })(),
    );
    await waitFor(async () => (await stack.depth()).visible === 0, 30_000, 'the warm-up referral received');
  }
  await Promise.all(polls);
  await waitFor(() => uuids.every((uuid) => marks.get(uuid)?.completed !== undefined), 60_000, 'the warm-up referrals paid');
  for (const uuid of uuids) marks.delete(uuid);
  for (const container of pool) container.invocations.length = 0;
  stack.shopify.reset();
}

function planRow(run: PlanRun): Row {
  const floor = run.plan === 'commerce_components' ? 0.9 : 0.95;
  const scaled = run.scale > 1 ? `, time scaled ×${fmt(run.scale, 0)}` : '';
  return {
    id: `reward.budget.${run.plan}`,
    section: SECTION,
    measure: `${run.plan} shop (${fmtInt(run.restoreRate)} points/s): ${run.containers} containers × 10, ${fmtInt(run.referrals)} referrals${run.burst ? ' sent at once' : ''}${scaled}, referrals/s while spending (first card to last, ${fmt(run.seconds, 1)} s)`,
    value: `${fmt(run.rate, 2)}/s`,
    reference: `max with the bucket full at the first card, (${fmtInt(run.bucket)} + ${fmtInt(run.restoreRate)}·t)/(2·10·t) = ${fmt(run.max, 2)}/s`,
    ratio: run.rate / run.max,
    target: `≥ ${floor}`,
    holds: run.rate / run.max >= floor,
  };
}

function planNote(run: PlanRun): string {
  return (
    `${run.plan}: ${fmt(run.rate / (run.restoreRate / 20), 3)} of the restore rate alone (${fmt(run.restoreRate / 20, 0)} referrals/s); ` +
    `from the first poll to the last referral completed ${fmt(run.wholeRun.seconds, 1)} s, ratio ${fmt(run.wholeRun.ratio, 3)}; ` +
    `${run.throttled} THROTTLED answers in ${run.calls} Shopify calls (${fmt((100 * run.throttled) / Math.max(1, run.calls), 2)} per 100); ` +
    `batches per container ${Math.min(...run.batches.map((b) => b.length))}–${Math.max(...run.batches.map((b) => b.length))}; ` +
    `this process's CPU ${fmt(run.cpuShare, 2)} of one core over the drain` +
    (run.scale > 1
      ? `; run with time scaled ×${fmt(run.scale, 0)} (restore ${fmtInt(run.restoreRate / run.scale)} points/s, the bucket's ${fmtInt(run.bucket)} points, round trips ×${fmt(run.scale, 0)}), figures in the plan's time.`
      : '.')
  );
}

/**
 * Time to reward during the burst, beside the earliest the shop's budget lets the same referral be
 * paid: the k-th needs 20·k points, of which the bucket holds `bucket` at the start and the rest
 * restores at `restoreRate`, plus one referral's round trips.
 */
function burstRows(run: PlanRun, trips: RoundTrips): Row[] {
  const samples = run.burst ?? [];
  return ([50, 99] as const).map((p): Row => {
    const k = Math.ceil((p / 100) * samples.length);
    const floorMs = Math.max(0, (20 * k - run.bucket) / run.restoreRate) * 1000 + trips.shopifyMs + trips.customerioMs;
    const value = percentile(samples, p);
    return {
      id: `reward.burst.p${p}`,
      section: SECTION,
      measure: `during a burst of ${fmtInt(samples.length)} referrals (${run.plan} shop, ${run.containers} containers): time to reward p${p}`,
      value: `${fmt(value / 1000, 1)} s`,
      reference: `the budget's floor for the ${fmtInt(k)}th referral, (20·${fmtInt(k)} − ${fmtInt(run.bucket)})/${fmtInt(run.restoreRate)} s + round trips: ${fmt(floorMs / 1000, 1)} s`,
      ratio: value / floorMs,
    };
  });
}

interface OutageRun {
  outageSeconds: number;
  visibilitySeconds: number;
  containers: number;
  referrals: number;
  /** ms after the outage ended that each referral was paid (0 if before). */
  afterEnd: number[];
  receives: number;
  failed: number;
  lost: number;
}

/**
 * Shopify answers 503 to everything for a minute while referrals keep arriving; the worker's own
 * retries and the redelivery it sets (lib/infra/redelivery.ts) must bring every one of them back
 * soon after the shop does: paid within 60 s of the outage's end.
 */
async function rewardAfterOutage(emulators: Emulators, options: Required<Options>): Promise<OutageRun> {
  const outageMs = options.quick ? 1_000 : 60_000;
  const visibilitySeconds = options.quick ? 1 : DEPLOYED_VISIBILITY_SECONDS;
  const containers = sizeForShop({ restoreRate: SHOPIFY_PLAN_RESTORE_RATES.standard, batchSize: 10 }).maximumConcurrency;
  const referrals = options.quick ? 2 : 20;
  const marks: Marks = new Map();
  const stack = await startStack(
    emulators,
    { trips: options.trips, visibilitySeconds, env: { WORKER_MAX_CONCURRENCY: String(containers) } },
    marks,
  );
  const pool = Array.from({ length: containers }, () => stack.container());
  const stops = pool.map((container) => keepPolling(() => container.pollOnce()));
  const uuids: string[] = [];
  let lost = 0;
  let failed = 0;
  try {
    progress(`time to reward after a ${outageMs / 1000} s Shopify outage: ${referrals} referrals sent during it`);
    // Warm: the containers have read the shop before it goes down.
    const first = referralBody();
    await ingestAll(stack, [first.body]);
    await waitFor(() => marks.get(first.uuid)?.completed !== undefined, 30_000, 'the warm-up referral paid');
    stack.shopify.setFaultPolicy(() => 'http503');
    const down = nowMs();
    const send = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const { uuid, body: text } = referralBody();
        uuids.push(uuid);
        await ingestAll(stack, [text]);
      }
    };
    await send(referrals / 2);
    await sleep(outageMs / 2);
    await send(referrals / 2);
    await sleep(Math.max(0, down + outageMs - nowMs()));
    stack.shopify.setFaultPolicy(undefined);
    const up = nowMs();
    let settled = false;
    let checked = 0;
    await waitFor(
      async () => {
        if (uuids.every((uuid) => marks.get(uuid)?.completed !== undefined)) return true;
        // A referral dead-lettered is recorded FAILED on the queue's last receive: stop waiting for it.
        if (nowMs() - checked < 1_000) return false;
        checked = nowMs();
        const statuses = await Promise.all(uuids.map(async (uuid) => (await stack.ledger.get(uuid))?.status));
        settled = statuses.every((status) => status === 'COMPLETED' || status === 'FAILED');
        return settled;
      },
      (visibilitySeconds + 120) * 1000,
      'every referral sent during the outage paid or dead-lettered',
    );
    for (const uuid of uuids) {
      const status = (await stack.ledger.get(uuid))?.status;
      if (status === 'FAILED') failed++;
      if (status !== 'COMPLETED' || stack.shopify.cards.filter((card) => card.note?.includes(uuid)).length !== 2) lost++;
    }
    return {
      outageSeconds: outageMs / 1000,
      visibilitySeconds,
      containers,
      referrals,
      afterEnd: uuids.map((uuid) => Math.max(0, (marks.get(uuid)?.completed ?? Number.POSITIVE_INFINITY) - up)),
      receives: stack.aws.requests.get('ReceiveMessageCommand') ?? 0,
      failed,
      lost,
    };
  } finally {
    stack.shopify.setFaultPolicy(undefined);
    await Promise.all(stops.map((stop) => stop()));
    await stack.stop();
  }
}

function outageRows(run: OutageRun): Row[] {
  const reference = 60_000;
  return (['p50', 'last'] as const).map((which): Row => {
    const value = which === 'p50' ? percentile(run.afterEnd, 50) : Math.max(...run.afterEnd);
    return {
      id: `reward.outage.${which}`,
      section: SECTION,
      measure: `after a ${fmt(run.outageSeconds, 0)} s Shopify outage (HTTP 503), ${run.referrals} referrals sent during it: ${which === 'p50' ? 'half of them paid within' : 'the last one paid'} (after the outage's end)`,
      value: `${fmt(value / 1000, 1)} s`,
      reference: '60 s',
      ratio: value / reference,
      ...(which === 'last' ? { target: '≤ 1', holds: value <= reference && run.lost === 0 } : {}),
    };
  });
}
