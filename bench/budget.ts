/**
 * 3. Shopify budget. N referrals are queued through the ingest handler, then worker containers
 * (as deployed: batch size and timeout from serverless.yml, production retry policy, one cached
 * Shopify transport + pacer per container) drain the queue against the fake Shopify enforcing the
 * leaky bucket. The bucket starts full, so the theoretical maximum over the run's t seconds is
 * (bucket + restore·t) / (2·cost) referrals; a steady-state figure is computed separately.
 */
import type { Fetch } from '../lib/infra/http';
import type { Checkpoint } from '../lib/domain/rewards';
import { captureOutput, progress } from './logs';
import type { Row, SectionResult } from './report';
import { BenchStack, referralBody, type Emulators, type WorkerContainer } from './stack';
import { fmt, fmtInt, mapConcurrent } from './stats';
import { countLost } from './verify';

const SECTION = '3. Shopify budget';

export interface BudgetParams {
  referrals: number;
  bucket: { size: number; restoreRate: number };
  createCost: number;
  shopifyLatencyMs: number;
  customerioLatencyMs: number;
  containers: number;
  /** false: the reference run, Shopify requests without a pacer (blind retries of THROTTLED). */
  pacing: boolean;
  timeoutMs: number;
}

export const FULL: BudgetParams = {
  referrals: 1_000,
  bucket: { size: 1_000, restoreRate: 100 },
  createCost: 10,
  shopifyLatencyMs: 150,
  customerioLatencyMs: 100,
  containers: 1,
  pacing: true,
  timeoutMs: 600_000,
};

export const QUICK: BudgetParams = {
  referrals: 60,
  bucket: { size: 100, restoreRate: 500 },
  createCost: 10,
  shopifyLatencyMs: 20,
  customerioLatencyMs: 10,
  containers: 1,
  pacing: true,
  timeoutMs: 60_000,
};

interface Reading {
  /** Date.now() when the answer arrived. */
  t: number;
  available: number;
  throttled: boolean;
}

export interface BudgetRun {
  params: BudgetParams;
  seconds: number;
  rate: number;
  theoretical: number;
  ratio: number;
  /** restore ÷ (2 × cost): the steady-state maximum, referrals/s. */
  theoreticalRate: number;
  steady?: { seconds: number; rate: number; ratio: number; cards: number; drawdown: number };
  calls: number;
  throttled: number;
  lost: number;
  problems: string[];
  /** Worker invocation time per referral (a container is billed while it waits on the pacer). */
  workerMsPerReferral: number;
  pacer: { waited: number; waitedMs: number; capped: number; permits: number };
}

export async function runBudget(emulators: Emulators, params: BudgetParams): Promise<BudgetRun> {
  const completed = new Map<string, number>();
  const cardTimes: number[] = [];
  const readings: Reading[] = [];
  const stack = await BenchStack.start(emulators, {
    shopify: {
      bucket: params.bucket,
      createCost: params.createCost,
      latencyMs: params.shopifyLatencyMs,
      onCard: () => cardTimes.push(Date.now()),
    },
    customerio: { latencyMs: params.customerioLatencyMs },
    checkpoint: (step: Checkpoint, eventId: string) => {
      if (step === 'completed') completed.set(eventId, Date.now());
    },
  });
  const release = captureOutput();
  try {
    // Watches Shopify's answers (the bucket level it reports) without touching them.
    const shopifyUrl = stack.shopify.url;
    const watching: Fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (String(input).startsWith(shopifyUrl)) {
        const t = Date.now();
        response
          .clone()
          .json()
          .then((json: unknown) => {
            const body = json as {
              errors?: { extensions?: { code?: string } }[];
              extensions?: { cost?: { throttleStatus?: { currentlyAvailable?: number } } };
            };
            const available = body.extensions?.cost?.throttleStatus?.currentlyAvailable;
            const throttled = Array.isArray(body.errors) && body.errors.some((e) => e.extensions?.code === 'THROTTLED');
            if (typeof available === 'number') readings.push({ t, available, throttled });
          })
          .catch(() => undefined);
      }
      return response;
    };

    progress(`budget: queueing ${params.referrals} referrals through ingest`);
    const eventIds = await mapConcurrent(Array.from({ length: params.referrals }), 8, async () => {
      const { uuid, body } = referralBody();
      const result = await stack.ingest(body);
      if (result.statusCode !== 202) throw new Error(`ingest answered ${result.statusCode}`);
      return uuid;
    });

    const containers: WorkerContainer[] = Array.from({ length: params.containers }, () =>
      stack.container({ fetch: watching, pacing: params.pacing }),
    );
    const theoreticalRate = params.bucket.restoreRate / (2 * params.createCost);
    progress(
      `budget: draining with ${params.containers} container(s)${params.pacing ? '' : ', pacing off'}; bucket ${params.bucket.size}, restore ${params.bucket.restoreRate}/s, ` +
        `cost ${params.createCost} → ${theoreticalRate}/s after the initial burst`,
    );
    const start = Date.now();
    await stack.drain(containers, () => completed.size >= params.referrals, params.timeoutMs);
    const end = Math.max(...completed.values());
    const { lost, problems } = await countLost(stack, eventIds);

    const seconds = (end - start) / 1000;
    const rate = params.referrals / seconds;
    const theoretical = (params.bucket.size + params.bucket.restoreRate * seconds) / (2 * params.createCost * seconds);

    // Steady state: from the first answer that shows the burst spent (bucket below two creates) to the
    // last card. Points spent in the window minus the bucket's drawdown is what the restore paid for.
    // The window's ends are card creation times on the fake (server side): the level a reading
    // reports is the bucket's just after the card its request created.
    let steady: BudgetRun['steady'];
    readings.sort((a, b) => a.t - b.t);
    cardTimes.sort((a, b) => a - b);
    const first = readings.find((r) => r.t >= start && !r.throttled && r.available < 2 * params.createCost);
    const last = [...readings].reverse().find((r) => !r.throttled);
    const t1 = first ? cardTimes.filter((t) => t <= first.t).pop() : undefined;
    const t2 = cardTimes[cardTimes.length - 1];
    if (first && last && t1 !== undefined && t2 - t1 > 1_000) {
      const cards = cardTimes.filter((t) => t > t1 && t <= t2).length;
      const drawdown = first.available - last.available;
      const windowSeconds = (t2 - t1) / 1000;
      const funded = cards * params.createCost - drawdown;
      const steadyRate = funded / (2 * params.createCost) / windowSeconds;
      steady = { seconds: windowSeconds, rate: steadyRate, ratio: steadyRate / theoreticalRate, cards, drawdown };
    }

    const pacers = containers.map((c) => c.pacer?.stats);
    const pacer = { waited: 0, waitedMs: 0, capped: 0, permits: 0 };
    for (const stats of pacers) {
      if (!stats) continue;
      pacer.waited += stats.waited;
      pacer.waitedMs += stats.waitedMs;
      pacer.capped += stats.capped;
      pacer.permits += stats.permits;
    }
    const workerMs = containers.reduce((sum, c) => sum + c.invocations.reduce((s, i) => s + i.ms, 0), 0);
    return {
      params,
      seconds,
      rate,
      theoretical,
      ratio: rate / theoretical,
      theoreticalRate,
      steady,
      calls: stack.shopify.requests.length,
      throttled: stack.shopify.throttledCount,
      lost,
      problems,
      workerMsPerReferral: workerMs / params.referrals,
      pacer,
    };
  } finally {
    release();
    await stack.stop();
  }
}

/** The target, judged at the table's precision (levels are reported in whole points). */
const within = (ratio: number): boolean => {
  const shown = Math.round(ratio * 1000) / 1000;
  return shown >= 0.95 && shown <= 1;
};

export async function benchBudget(emulators: Emulators, options: { quick: boolean }): Promise<SectionResult> {
  const params = options.quick ? QUICK : FULL;
  const run = await runBudget(emulators, params);
  const multi = await runBudget(emulators, { ...params, containers: 2, referrals: options.quick ? 40 : 300 });
  const unpaced = await runBudget(emulators, { ...params, pacing: false, referrals: options.quick ? 40 : 300 });
  const perHundred = (r: BudgetRun) => (r.calls > 0 ? (100 * r.throttled) / r.calls : 0);
  const { bucket, createCost } = params;

  const rows: Row[] = [
    {
      id: 'budget.rate',
      section: SECTION,
      measure: `${params.referrals} referrals, 1 container: referrals/s over the whole run (${fmt(run.seconds, 1)} s)`,
      value: `${fmt(run.rate, 3)}/s`,
      reference: `max with a full bucket at start, (${bucket.size} + ${bucket.restoreRate}·t)/(2·${createCost}·t) = ${fmt(run.theoretical, 3)}/s`,
      ratio: run.ratio,
      target: '≥ 0.95 and ≤ 1',
      holds: within(run.ratio),
    },
    {
      id: 'budget.steady',
      section: SECTION,
      measure: run.steady
        ? `steady state after the burst (${fmt(run.steady.seconds, 1)} s window), restore-funded referrals/s`
        : 'steady state after the burst (window too short to measure)',
      value: run.steady ? `${fmt(run.steady.rate, 3)}/s` : 'n/a',
      reference: `restore ÷ (2 × cost) = ${fmt(run.theoreticalRate, 3)}/s`,
      ratio: run.steady?.ratio,
      target: '≥ 0.95 and ≤ 1',
      holds: run.steady ? within(run.steady.ratio) : undefined,
    },
    {
      id: 'budget.throttled',
      section: SECTION,
      measure: 'THROTTLED replies per 100 Shopify calls (1 container)',
      value: `${fmt(perHundred(run), 2)} (${run.throttled} of ${fmtInt(run.calls)})`,
      reference: `pacing off, ${unpaced.params.referrals} referrals: ${fmt(perHundred(unpaced), 2)} (${unpaced.throttled} of ${fmtInt(unpaced.calls)})`,
      ratio: perHundred(unpaced) > 0 ? perHundred(run) / perHundred(unpaced) : undefined,
    },
    {
      id: 'budget.unpaced',
      section: SECTION,
      measure: `${unpaced.params.referrals} referrals, 1 container, pacing off (reference): referrals/s`,
      value: `${fmt(unpaced.rate, 3)}/s`,
      reference: `(${bucket.size} + ${bucket.restoreRate}·t)/(2·${createCost}·t) = ${fmt(unpaced.theoretical, 3)}/s`,
      ratio: unpaced.ratio,
    },
    {
      id: 'budget.lost',
      section: SECTION,
      measure: 'referrals not fulfilled exactly once',
      value: String(run.lost + multi.lost + unpaced.lost),
      reference: `${params.referrals + multi.params.referrals + unpaced.params.referrals} queued (all runs)`,
      target: '0',
      holds: run.lost + multi.lost + unpaced.lost === 0,
    },
    {
      id: 'budget.rate.containers',
      section: SECTION,
      measure: `${multi.params.referrals} referrals, 2 containers (separate pacers): referrals/s; throttled per 100 calls`,
      value: `${fmt(multi.rate, 3)}/s; ${fmt(perHundred(multi), 2)} (${multi.throttled} of ${fmtInt(multi.calls)})`,
      reference: `(${bucket.size} + ${bucket.restoreRate}·t)/(2·${createCost}·t) = ${fmt(multi.theoretical, 3)}/s`,
      ratio: multi.ratio,
    },
  ];
  const notes = [
    `Fake Shopify: bucket ${bucket.size} points, restore ${bucket.restoreRate}/s, giftCardCreate cost ${createCost}, ${params.shopifyLatencyMs} ms latency; ` +
      `fake Customer.io ${params.customerioLatencyMs} ms. t runs from the first poll to the last referral completed.`,
    'Whole-run ratio: the bucket starts full, so the most any client can do in t seconds is (bucket + restore·t)/(2·cost) referrals; ' +
      'the ratio is achieved ÷ that, and cannot exceed 1 by construction.',
    run.steady
      ? `Steady-state ratio: window from the first answer reporting under ${2 * createCost} points (the burst spent) to the last card; ` +
        `${run.steady.cards} cards created in it, minus the bucket's drawdown over the window (${run.steady.drawdown} points, from the reported levels), ` +
        `is what the restore paid for; ÷ (restore × window).`
      : 'Steady state: not measured (run too short).',
    `Pacer (1 container): ${run.pacer.waited} of ${run.pacer.permits} requests waited, ${fmt(run.pacer.waitedMs / 1000, 1)} s in total, ${run.pacer.capped} released by the cap.`,
    `Worker time per referral while draining: ${fmt(run.workerMsPerReferral, 0)} ms (1 container; a container waiting on the pacer is billed).`,
    `2 containers each learn what the other spends only from the readings (pacers are per container): ${multi.throttled} THROTTLED replies ` +
      `(${fmt(perHundred(multi), 2)} per 100 calls), retried by the production policy; ratio ${fmt(multi.ratio, 3)}.`,
    `Pacing off (the reference): every request goes at once and a THROTTLED reply is retried after the wait it reports; ` +
      `${fmt(unpaced.calls / (2 * unpaced.params.referrals), 2)} calls per card, ratio ${fmt(unpaced.ratio, 3)}.`,
    ...[...run.problems, ...multi.problems, ...unpaced.problems].map((p) => `Problem: ${p}`),
  ];
  return {
    rows,
    notes,
    lost: run.lost + multi.lost + unpaced.lost,
    data: { workerMsPerReferralBacklog: run.workerMsPerReferral },
  };
}
