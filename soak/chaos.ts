/**
 * The chaos soak: the real ingest and worker handlers on fauxqs + dynalite + the fake Shopify,
 * Customer.io and PostHog (tests/support/pipeline.ts), driven with thousands of referrals while
 * everything that can go wrong does — duplicate webhooks (back to back, spread out, and after
 * completion), 5xx/429/THROTTLED/timeouts/lost responses from Shopify and Customer.io, a crash at
 * every step boundary of the worker (soft: an exception; hard: the process dies and leaves its
 * lease), several workers polling at once — then a DLQ redrive with the faults off, a drain, and
 * a count on the fakes of what each referral actually got.
 *
 * Some referrals are ones the program rules must refuse (self-referrals, a second referral of an
 * already rewarded redeemer, a referrer past the cap), so the soak also proves that refusals and
 * per-person claims hold under the same chaos. Then, each on a pipeline of its own and side by
 * side, the sequence cases of issue #10 (soak/sequences.ts) and the reward lifecycle's rounds
 * (soak/lifecycle.ts: holds, the budget's review queue, decisions and revokes).
 *
 * By phase: plan.ts (the traffic, from the seed), faults.ts (what breaks, via a wrapping ledger),
 * phases.ts (stream, late copies, redrive), count.ts (the verdict), report.ts (figures and table).
 * Needs TEST_SQS_ENDPOINT and TEST_DYNAMODB_ENDPOINT (jest's global setup, or soak/run.ts).
 */
import { parseGiftCardNote } from '../lib/domain/rewards';
import { Pipeline } from '../tests/support/pipeline';
import { mapConcurrent } from '../bench/stats';
import { count } from './count';
import { Chaos, CUSTOMERIO_FAULTS, SHOPIFY_FAULTS } from './faults';
import { prng, settle, sum, watch } from './harness';
import { runLifecycle } from './lifecycle';
import { runQualification } from './qualify';
import { planTraffic, pooledCode, REFERRER_CAP } from './plan';
import { postLate, Poster, redriveAndDrain } from './phases';
import type { ReferralProblem, SoakReport } from './report';
import { runSequences } from './sequences';

export { CHECKPOINTS, CUSTOMERIO_FAULTS, SHOPIFY_FAULTS, type CrashKind, type SoakCustomerIoFault, type SoakShopifyFault } from './faults';
export { prng } from './harness';
export { formatReport, type ReferralProblem, type SoakReport } from './report';

export interface ChaosSoakOptions {
  /** Distinct referral events (valid webhooks). */
  events: number;
  /** Share of referrals delivered more than once (default 0.25). */
  duplicateRate?: number;
  /** Share of Shopify calls and of Customer.io calls answered with a fault (default 0.2 each). */
  faultRate?: number;
  /** Chance of a crash at each checkpoint the worker reaches (default 0.05). */
  crashRate?: number;
  /** Concurrent workers polling the queue (default 4; at least 2 is the point). */
  pollers?: number;
  seed?: number;
  log?: (line: string) => void;
  /** Share of crashes that are hard: the process dies, so no lease release, no ledger bookkeeping (default 0.2). */
  hardCrashShare?: number;
  /** Share of referrals the program rules must refuse (self-referrals, repeat redeemers; default 0.03), plus a referrer over the cap. */
  ruleRate?: number;
  /** Share of webhooks that are not referrals at all (half malformed → 422, half other events → 200; default 0.02). */
  invalidRate?: number;
  /** Per-request timeout of the upstream clients, so a 'timeout' fault costs this (default 400 ms). */
  clientTimeoutMs?: number;
  /** SQS visibility timeout (default 2 s; the deployed queue uses 360). */
  visibilityTimeoutSeconds?: number;
  /** The worker "Lambda" timeout (default 5 s: 2 s of retry budget, a lease of ~7 s). */
  workerTimeoutMs?: number;
  /** How long the chaos phases may take before the soak moves on to the redrive regardless (default 15 min). */
  settleTimeoutMs?: number;
  /**
   * Codes are drawn from this many per expected card (default 25), so some collide with another
   * referral's card and take the TAKEN → look up → new code path; 0 uses the real generator.
   */
  codePoolPerCard?: number;
  /** Rounds of the sequence cases of issue #10 (soak/sequences.ts), on a pipeline of their own (default 1 per 500 events, at least 2). */
  sequenceRounds?: number;
  /** Rounds of the lifecycle cases (soak/lifecycle.ts: hold, budget review, decisions, revokes), on a pipeline of their own (default 1 per 500 events, at least 1). */
  lifecycleRounds?: number;
  /** Rounds of the qualification cases (soak/qualify.ts: pay on value), on a pipeline of their own (default 1 per 500 events, at least 1). */
  qualificationRounds?: number;
}

export async function runChaosSoak(options: ChaosSoakOptions): Promise<SoakReport> {
  const startedAt = Date.now();
  const seed = (options.seed ?? 1) >>> 0;
  const duplicateRate = options.duplicateRate ?? 0.25;
  const faultRate = options.faultRate ?? 0.2;
  const crashRate = options.crashRate ?? 0.05;
  const hardCrashShare = options.hardCrashShare ?? 0.2;
  const pollers = Math.max(1, options.pollers ?? 4);
  const ruleRate = options.ruleRate ?? 0.03;
  const invalidRate = options.invalidRate ?? 0.02;
  const clientTimeoutMs = options.clientTimeoutMs ?? 400;
  const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 2;
  const workerTimeoutMs = options.workerTimeoutMs ?? 5_000;
  const settleTimeoutMs = options.settleTimeoutMs ?? 15 * 60_000;
  const codePool = Math.round((options.codePoolPerCard ?? 25) * 2 * options.events);
  const log = options.log ?? (() => undefined);
  const elapsed = () => Date.now() - startedAt;

  // Separate streams, so changing one rate does not reshuffle everything else.
  const planRng = prng(seed, 1);
  const codeRng = prng(seed, 5);
  const { planned, invalid, stream, late } = planTraffic(options.events, seed, { ruleRate, duplicateRate, invalidRate }, planRng);

  // --- observation ---------------------------------------------------------------------------
  const traces = new Map<string, string[]>();
  const trace = (eventId: string | undefined, what: string) => {
    if (!eventId) return;
    const lines = traces.get(eventId) ?? [];
    if (lines.length < 80) lines.push(`${elapsed()}ms ${what}`);
    traces.set(eventId, lines);
  };
  const problems: ReferralProblem[] = [];
  const problem = (eventId: string, text: string) => {
    problems.push({ eventId, problem: text, trace: traces.get(eventId) ?? [] });
  };
  const chaos = new Chaos({
    faultRate,
    crashRate,
    hardCrashShare,
    rng: { shopify: prng(seed, 2), customerio: prng(seed, 3), crash: prng(seed, 4) },
    trace,
  });
  const { faults, crashes } = chaos;
  let pollerErrors = 0;

  const pipeline = await Pipeline.start({
    visibilityTimeoutSeconds,
    workerTimeoutMs,
    clientTimeoutMs,
    pollWaitTimeSeconds: 1,
    env: { MAX_REWARDS_PER_REFERRER: String(REFERRER_CAP) },
    ...(codePool > 0 ? { newCode: () => pooledCode(Math.floor(codeRng() * codePool), seed) } : {}),
    onPollerError: (error) => {
      pollerErrors++;
      log(`  poller error: ${(error as Error)?.message ?? String(error)}`);
    },
    // Shopify's bucket, refilling fast enough that only the injected throttles slow the soak down.
    shopify: {
      bucket: { size: 1000, restoreRate: 5_000 },
      onCard: (card) => {
        const note = parseGiftCardNote(card.note);
        trace(note?.eventId, `shopify: ${note?.role ?? '?'} card ${card.id} created (…${card.code.slice(-4)})`);
      },
    },
    checkpoint: chaos.checkpoint,
    wrapLedger: chaos.wrapLedger,
  });
  pipeline.shopify.setFaultPolicy(chaos.shopifyFault);
  pipeline.customerio.setFaultPolicy(chaos.customerioFault);

  const phases = { post: 0, settle: 0, late: 0, redrive: 0, check: 0 };
  const poster = new Poster(pipeline, { trace, problem, log });
  const progress = setInterval(() => {
    void pipeline.depth(pipeline.resources.queueUrl).then(
      (depth) =>
        log(
          `  ${(elapsed() / 1000).toFixed(0)}s: queue ${depth.visible} visible / ${depth.inFlight} in flight; ` +
            `cards ${pipeline.shopify.cards.length}, events ${pipeline.customerio.events.length}, ` +
            `faults ${sum(faults.shopify) + sum(faults.customerio)}, crashes ${sum(crashes.soft) + sum(crashes.hard)}`,
        ),
      () => undefined,
    );
  }, 5_000);

  try {
    // --- phase 1: the stream, with the pollers already running -------------------------------
    log(
      `chaos soak seed ${seed}: ${planned.length} referrals, ${stream.length + late.length} webhooks ` +
        `(${late.length} after completion), faults ${faultRate * 100} %, crash chance ${crashRate} per checkpoint, ${pollers} pollers`,
    );
    pipeline.poller.start(pollers);
    let t = Date.now();
    await mapConcurrent(stream, 8, poster.post);
    phases.post = Date.now() - t;
    log(`  posted ${stream.length} webhooks in ${(phases.post / 1000).toFixed(1)} s`);

    t = Date.now();
    const settled = await settle(pipeline, startedAt + settleTimeoutMs);
    phases.settle = Date.now() - t;
    log(`  queue ${settled ? 'settled' : 'did NOT settle'} after ${(phases.settle / 1000).toFixed(1)} s`);

    // --- phase 2: copies of referrals that (mostly) finished, chaos still on ------------------
    t = Date.now();
    const lateCopiesOfFinished = await postLate(pipeline, late, poster);
    const lateSettled = await settle(pipeline, startedAt + settleTimeoutMs);
    phases.late = Date.now() - t;
    log(
      `  ${late.length} late copies (${lateCopiesOfFinished} of finished referrals) ` +
        `${lateSettled ? 'settled' : 'did NOT settle'} after ${(phases.late / 1000).toFixed(1)} s`,
    );
    await watch(pipeline.poller.stop(), 30_000, () => log('  still waiting for the pollers to stop after 30 s'));

    // --- phase 3: faults off, redrive whatever is in the DLQ, drain ---------------------------
    t = Date.now();
    chaos.on = false;
    pipeline.shopify.setFaultPolicy(undefined);
    pipeline.customerio.setFaultPolicy(undefined);
    const { deadLettered, redriveRounds } = await redriveAndDrain(pipeline, { trace, problem, log });
    phases.redrive = Date.now() - t;
    log(
      `  redrove ${deadLettered.messages} dead letters (${deadLettered.referrals} referrals) in ${redriveRounds} round(s), ${(phases.redrive / 1000).toFixed(1)} s`,
    );

    // --- the count ----------------------------------------------------------------------------
    t = Date.now();
    const records = await mapConcurrent(planned, 16, (referral) => pipeline.record(referral.uuid));
    const invalidRecords = await mapConcurrent(invalid, 16, (bad) => pipeline.record(bad.uuid));
    // The rules' budgets: exactly one reward per redeemer, exactly REFERRER_CAP per referrer.
    const groups = new Set(planned.flatMap((referral) => (referral.group ? [referral.group] : [])));
    const verdict = count({
      planned,
      groups,
      records,
      invalid,
      invalidRecords,
      cards: pipeline.shopify.cards,
      events: pipeline.customerio.events,
      captures: pipeline.posthog.captures,
      problem,
    });
    phases.check = Date.now() - t;

    // --- phase 4: the sequence cases and the lifecycle rounds, under the same faults, each on a
    // pipeline of its own, side by side (they share nothing but the machine) --------------------
    const shared = { faultRate, pollers, visibilityTimeoutSeconds, workerTimeoutMs, clientTimeoutMs, log };
    const [sequences, lifecycle, qualification] = await Promise.all([
      runSequences({
        ...shared,
        rounds: options.sequenceRounds ?? Math.max(2, Math.round(options.events / 500)),
        rng: prng(seed, 6),
        shopifyFaults: SHOPIFY_FAULTS,
        customerioFaults: CUSTOMERIO_FAULTS,
      }),
      runLifecycle({
        ...shared,
        crashRate,
        hardCrashShare,
        seed,
        rounds: options.lifecycleRounds ?? Math.max(1, Math.round(options.events / 500)),
      }),
      runQualification({
        ...shared,
        crashRate,
        hardCrashShare,
        seed,
        rounds: options.qualificationRounds ?? Math.max(1, Math.round(options.events / 500)),
      }),
    ]);
    problems.push(...sequences.problems, ...lifecycle.problems, ...qualification.problems);
    log(`  sequence cases: ${sequences.rounds} rounds, ${sequences.lost} lost, ${sequences.doubled} doubled`);
    log(`  lifecycle: ${lifecycle.rounds} rounds, ${lifecycle.referrals} referrals, ${lifecycle.lost} lost, ${lifecycle.doubled} doubled`);
    log(
      `  qualification: ${qualification.rounds} rounds, ${qualification.referrals} referrals, ${qualification.lost} lost, ${qualification.doubled} doubled`,
    );

    const duplicatesBy = { burst: 0, spread: 0, afterCompletion: 0 };
    for (const referral of planned) {
      for (const mode of referral.extra) duplicatesBy[mode === 'late' ? 'afterCompletion' : mode]++;
    }
    const duplicates = planned.reduce((n, referral) => n + referral.extra.length, 0);
    const report: SoakReport = {
      seed,
      ok: false,
      durationMs: Date.now() - startedAt,
      phases,
      settings: {
        duplicateRate,
        faultRate,
        crashRate,
        hardCrashShare,
        pollers,
        clientTimeoutMs,
        visibilityTimeoutSeconds,
        workerTimeoutMs,
        maxReceiveCount: pipeline.maxReceiveCount,
        referrerCap: REFERRER_CAP,
      },
      events: planned.length,
      planted: {
        selfReferrals: planned.filter((referral) => referral.kind === 'self').length,
        repeatRedeemerPairs: [...groups].filter((group) => group.rule === 'one-per-redeemer').length,
        cappedReferrerReferrals: planned.filter((referral) => referral.kind === 'capped').length,
      },
      expectedRewarded:
        planned.filter((referral) => referral.kind === 'normal' && !referral.group).length +
        [...groups].reduce((n, group) => n + group.rewards, 0),
      deliveries: planned.length + duplicates,
      duplicates,
      duplicatedEvents: planned.filter((referral) => referral.extra.length > 0).length,
      duplicatesBy,
      lateCopiesOfFinished,
      invalidWebhooks: {
        rejected: invalid.filter((bad) => bad.kind === 'rejected').length,
        ignored: invalid.filter((bad) => bad.kind === 'ignored').length,
      },
      ingestRetries: poster.ingestRetries,
      faults: { ...faults, total: sum(faults.shopify) + sum(faults.customerio) },
      requests: {
        shopify: pipeline.shopify.requests.length,
        customerio: pipeline.customerio.requests.length,
        posthog: pipeline.posthog.captures.length,
        shopifyThrottledTotal: pipeline.shopify.throttledCount,
      },
      crashes: { ...crashes, total: sum(crashes.soft) + sum(crashes.hard) },
      ledgerBegins: chaos.begins,
      pollerErrors,
      deadLettered,
      redriveRounds,
      cardsCreated: pipeline.shopify.cards.length,
      eventsSent: pipeline.customerio.events.length,
      customerioDuplicatesIgnored: pipeline.customerio.duplicatesIgnored,
      codeCollisions: records.reduce((n, record) => n + (record?.codeCollisions ?? 0), 0),
      ...verdict,
      lost: verdict.lost + sequences.lost + lifecycle.lost + qualification.lost,
      doubled: verdict.doubled + sequences.doubled + lifecycle.doubled + qualification.doubled,
      sequences,
      lifecycle,
      qualification,
      problems,
    };
    report.ok =
      report.lost === 0 &&
      report.doubled === 0 &&
      report.refusedButPaid === 0 &&
      report.codeMismatches === 0 &&
      report.captureMismatches === 0 &&
      sequences.expiryWrong === 0 &&
      sequences.misdirected === 0 &&
      lifecycle.ok &&
      qualification.ok &&
      report.statuses.unaccounted === 0 &&
      report.rewarded === report.expectedRewarded &&
      problems.length === 0;
    return report;
  } finally {
    clearInterval(progress);
    chaos.on = false;
    await pipeline.stop();
  }
}
