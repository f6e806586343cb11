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
        };
      }),
    ];
    const notes = [
      `Round trips injected: Shopify ${trips.shopifyMs} ms, Customer.io ${trips.customerioMs} ms, DynamoDB ${trips.dynamodbMs} ms per ledger call; time to reward runs from ingest's 202 to the COMPLETED write.`,
      `Claim contention: the waiting referral is set to come back in 2–10 s (lib/infra/redelivery.ts); its time to reward is that wait plus one processing, where main waited the queue's ${DEPLOYED_VISIBILITY_SECONDS} s visibility timeout.` +
        (options.quick ? ' Quick mode: round trips a tenth of these, the wait capped by a 1 s queue visibility timeout.' : ''),
    ];
    let lost = idle.lost + contention.lost;
    for (const plan of PLANS) {
      const run = await budgetForPlan(emulators, plan, options);
      lost += run.lost;
      rows.push({
        id: `reward.budget.${plan}`,
        section: SECTION,
        measure: `${plan} shop (${fmtInt(run.restoreRate)} points/s): ${run.containers} containers × 10, ${run.referrals} referrals, referrals/s over the run (${fmt(run.seconds, 1)} s)`,
        value: `${fmt(run.rate, 2)}/s`,
        reference: `max with a full bucket at start, (${fmtInt(run.bucket)} + ${fmtInt(run.restoreRate)}·t)/(2·10·t) = ${fmt(run.max, 2)}/s`,
        ratio: run.rate / run.max,
      });
      notes.push(
        `${plan}: ${fmt(run.rate / (run.restoreRate / 20), 3)} of the restore rate alone (${fmt(run.restoreRate / 20, 0)} referrals/s); ` +
          `${run.throttled} THROTTLED answers in ${run.calls} Shopify calls (${fmt((100 * run.throttled) / Math.max(1, run.calls), 2)} per 100).`,
      );
    }
    return { rows, notes, lost };
  } finally {
    release();
  }
}

async function startStack(
  emulators: Emulators,
  options: { trips: RoundTrips; visibilitySeconds?: number; env?: Record<string, string>; bucket?: { size: number; restoreRate: number } },
  marks: Marks,
) {
  const trips = options.trips;
  const stack = await BenchStack.start(emulators, {
    shopify: { latencyMs: trips.shopifyMs, ...(options.bucket ? { bucket: options.bucket } : {}) },
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

interface PlanRun {
  restoreRate: number;
  bucket: number;
  containers: number;
  referrals: number;
  seconds: number;
  rate: number;
  max: number;
  calls: number;
  throttled: number;
  lost: number;
}

async function budgetForPlan(emulators: Emulators, plan: (typeof PLANS)[number], options: Required<Options>): Promise<PlanRun> {
  const restoreRate = SHOPIFY_PLAN_RESTORE_RATES[plan];
  // As deployed: the containers the sizing gives this plan, each told so (its pacer's share).
  const { maximumConcurrency: containers } = sizeForShop({ restoreRate, batchSize: 10 });
  // Shopify documents the restore rates, not every plan's bucket: 1,000 points (standard), or two
  // seconds' worth where that is more (Plus: 2,000), as ../shared/CONTRACTS.md has them.
  const bucket = Math.max(1_000, 2 * restoreRate);
  const budgetPerSecond = restoreRate / 20;
  // Quick: a handful, only to exercise the path (the figure is then the bucket's burst, not the budget).
  const referrals = options.quick ? 4 : Math.round(bucket / 20 + budgetPerSecond * 12);
  const marks: Marks = new Map();
  const stack = await startStack(
    emulators,
    { trips: options.trips, env: { WORKER_MAX_CONCURRENCY: String(containers) }, bucket: { size: bucket, restoreRate } },
    marks,
  );
  let lost = 0;
  try {
    progress(`budget, ${plan}: ${referrals} referrals, ${containers} containers`);
    const uuids: string[] = [];
    const bodies = Array.from({ length: referrals }, () => {
      const { uuid, body: text } = referralBody();
      uuids.push(uuid);
      return text;
    });
    await ingestAll(stack, bodies);
    const pool: WorkerContainer[] = Array.from({ length: containers }, () => stack.container());
    const start = nowMs();
    await stack.drain(pool, () => uuids.every((uuid) => marks.get(uuid)?.completed !== undefined), 300_000);
    const end = Math.max(...uuids.map((uuid) => marks.get(uuid)?.completed ?? Number.NaN));
    const seconds = (end - start) / 1000;
    for (const uuid of uuids) if ((await stack.ledger.get(uuid))?.status !== 'COMPLETED') lost++;
    if (stack.shopify.cards.length !== 2 * referrals) lost = Math.max(lost, 1);
    const calls = stack.shopify.requests.length;
    return {
      restoreRate,
      bucket,
      containers,
      referrals,
      seconds,
      rate: referrals / seconds,
      max: (bucket + restoreRate * seconds) / (20 * seconds),
      calls,
      throttled: stack.shopify.throttledCount,
      lost,
    };
  } finally {
    await stack.stop();
  }
}
