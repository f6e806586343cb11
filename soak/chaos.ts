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
 * per-person claims hold under the same chaos.
 *
 * Needs TEST_SQS_ENDPOINT and TEST_DYNAMODB_ENDPOINT (jest's global setup, or soak/run.ts).
 */
import { DeleteMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { CODE_ALPHABET } from '../lib/codes';
import type { LedgerRecord } from '../lib/ledger';
import { sleep } from '../lib/retry';
import { giftCardNote, parseGiftCardNote, type Checkpoint } from '../lib/rewards';
import { ulidFromUuid } from '../lib/ulid';
import type { CustomerIoFault, FakeTrackedEvent } from '../local/sandbox/customerio';
import type { FakeCapturedEvent } from '../local/sandbox/posthog';
import type { FakeGiftCard, ShopifyFault } from '../local/sandbox/shopify';
import { Pipeline, referralBody } from '../tests/support/pipeline';
import { mapConcurrent } from '../bench/stats';
import { pick, settle } from './harness';
import { runSequences, SEQUENCE_CASES, type SequenceReport } from './sequences';

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
}

export const CHECKPOINTS: readonly Checkpoint[] = ['begun', 'decided', 'card:referrer', 'card:redeemer', 'customerio', 'posthog', 'completed'];
export const SHOPIFY_FAULTS = ['http500', 'http503', 'http429', 'throttled', 'internal-error', 'lost-response', 'timeout'] as const;
export const CUSTOMERIO_FAULTS = ['http500', 'http503', 'http429', 'lost-response', 'timeout'] as const;
export type SoakShopifyFault = (typeof SHOPIFY_FAULTS)[number];
export type SoakCustomerIoFault = (typeof CUSTOMERIO_FAULTS)[number];
export type CrashKind = 'soft' | 'hard';

/** Relative weights: timeouts are the slowest fault, so they are the rarest. */
const SHOPIFY_WEIGHTS: Record<SoakShopifyFault, number> = {
  http500: 3, http503: 2, http429: 2, throttled: 3, 'internal-error': 1, 'lost-response': 4, timeout: 1,
};
const CUSTOMERIO_WEIGHTS: Record<SoakCustomerIoFault, number> = { http500: 3, http503: 3, http429: 2, 'lost-response': 4, timeout: 1 };

/** Set explicitly, so the soak's expectations do not drift with the default. */
const REFERRER_CAP = 10;

export interface ReferralProblem {
  eventId: string;
  problem: string;
  /** What happened to it, in order (ms since the start). */
  trace: string[];
}

export interface SoakReport {
  seed: number;
  ok: boolean;
  durationMs: number;
  phases: Record<'post' | 'settle' | 'late' | 'redrive' | 'check', number>;
  settings: {
    duplicateRate: number; faultRate: number; crashRate: number; hardCrashShare: number; pollers: number;
    clientTimeoutMs: number; visibilityTimeoutSeconds: number; workerTimeoutMs: number; maxReceiveCount: number; referrerCap: number;
  };
  /** Distinct referral events posted (valid webhooks). */
  events: number;
  /** Of those, how many the rules must refuse, by the planted case, and how many must be rewarded. */
  planted: { selfReferrals: number; repeatRedeemerPairs: number; cappedReferrerReferrals: number };
  expectedRewarded: number;
  /** Webhook deliveries of the referrals, duplicates included. */
  deliveries: number;
  /** Deliveries beyond the first. */
  duplicates: number;
  /** Referrals delivered more than once. */
  duplicatedEvents: number;
  duplicatesBy: { burst: number; spread: number; afterCompletion: number };
  /** Late copies whose referral was finished (COMPLETED or REJECTED) when the copy was posted. */
  lateCopiesOfFinished: number;
  invalidWebhooks: { rejected: number; ignored: number };
  /** Webhooks ingest did not accept first time (retried, as PostHog would). */
  ingestRetries: number;
  faults: { shopify: Record<SoakShopifyFault, number>; customerio: Record<SoakCustomerIoFault, number>; total: number };
  /** Requests the fakes saw, and how many Shopify refused for its (not injected) bucket. */
  requests: { shopify: number; customerio: number; posthog: number; shopifyThrottledTotal: number };
  crashes: { soft: Record<Checkpoint, number>; hard: Record<Checkpoint, number>; total: number };
  ledgerBegins: { acquired: number; busy: number; finished: number; takeoversAfterHardCrash: number };
  pollerErrors: number;
  /** Messages in the DLQ after the chaos phases, and the ledger state of their referrals then. */
  deadLettered: { messages: number; referrals: number; failedWithReason: number; inProgress: number; finished: number };
  redriveRounds: number;
  cardsCreated: number;
  eventsSent: number;
  /** Resends Customer.io dropped because it had seen the id. */
  customerioDuplicatesIgnored: number;
  /** Codes replaced because Shopify had them on another referral's card (ledger codeCollisions). */
  codeCollisions: number;
  rewarded: number;
  statuses: {
    completed: number; rejected: number; failed: number; unaccounted: number;
    rejectionReasons: Record<string, number>; failureReasons: Record<string, number>;
  };
  /** Rewards owed and not (fully) given: a referral missing a card or its event, or a rule group paid too few. */
  lost: number;
  /** Rewards given twice: a second card for a role, a second event, a redeemer or referrer paid past the rules, stray cards/events. */
  doubled: number;
  /** Referrals the rules must refuse that got a card or an event anyway. */
  refusedButPaid: number;
  /** Referrals whose Customer.io codes, card codes and ledger codes do not all agree. */
  codeMismatches: number;
  /** Cards or events for invalid webhooks, or for no known referral (also counted in doubled). */
  stray: number;
  /** Finished referrals without exactly one distinct PostHog outcome capture of the right kind. */
  captureMismatches: number;
  /** The sequence cases (soak/sequences.ts); their lost and doubled rewards are also in `lost` and `doubled`. */
  sequences: SequenceReport;
  problems: ReferralProblem[];
}

type DuplicateMode = 'burst' | 'spread' | 'late';
type PlantedKind = 'normal' | 'self' | 'repeat-redeemer' | 'capped';

interface Planned {
  index: number;
  uuid: string;
  body: unknown;
  referrerEmail: string;
  redeemerEmail: string;
  kind: PlantedKind;
  /** Referrals that share a rule's budget: one reward per redeemer, REFERRER_CAP per referrer. */
  group?: RuleGroup;
  extra: DuplicateMode[];
}

interface RuleGroup {
  rule: 'one-per-redeemer' | 'referrer-cap';
  members: Planned[];
  /** Rewards the group must get, exactly. */
  rewards: number;
}

const HARD_CRASH = 'chaos: hard crash';
const SOFT_CRASH = 'chaos: crash';

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
  const shopifyRng = prng(seed, 2);
  const customerioRng = prng(seed, 3);
  const crashRng = prng(seed, 4);
  const codeRng = prng(seed, 5);

  // --- the traffic -------------------------------------------------------------------------
  const planned = plan(options.events, seed, ruleRate, duplicateRate, planRng);
  const invalid: { uuid: string; body: unknown; kind: 'rejected' | 'ignored' }[] = [];
  const invalidCount = Math.round(options.events * invalidRate);
  for (let i = 0; i < invalidCount; i++) {
    const uuid = seededUuid(planRng);
    const { body } = referralBody({ uuid, referrer: `invalid-${i}-${seed}@example.com` }) as { body: any };
    const kind = i % 2 === 0 ? 'rejected' : 'ignored';
    if (kind === 'rejected') delete body.event.properties.referrer_email;
    else body.event.event = '$pageview';
    invalid.push({ uuid, body, kind });
  }

  // The main stream: first copies in order, burst copies right behind them (same batch, or a
  // batch another poller holds), spread copies somewhere later, invalid webhooks sprinkled in.
  const stream: { key: number; body: unknown; uuid: string; expect: 'queued' | 'rejected' | 'ignored' }[] = [];
  for (const referral of planned) {
    stream.push({ key: referral.index, body: referral.body, uuid: referral.uuid, expect: 'queued' });
    referral.extra.forEach((mode, copy) => {
      if (mode === 'burst') stream.push({ key: referral.index + 0.001 * (copy + 1), body: referral.body, uuid: referral.uuid, expect: 'queued' });
      if (mode === 'spread') {
        const key = referral.index + 1 + planRng() * Math.max(10, options.events * 0.2);
        stream.push({ key, body: referral.body, uuid: referral.uuid, expect: 'queued' });
      }
    });
  }
  for (const bad of invalid) stream.push({ key: planRng() * options.events, body: bad.body, uuid: bad.uuid, expect: bad.kind });
  stream.sort((a, b) => a.key - b.key);
  const late = planned.flatMap((referral) => referral.extra.filter((mode) => mode === 'late').map(() => referral));
  shuffle(planRng, late);

  // --- observation ---------------------------------------------------------------------------
  const traces = new Map<string, string[]>();
  const trace = (eventId: string | undefined, what: string) => {
    if (!eventId) return;
    const lines = traces.get(eventId) ?? [];
    if (lines.length < 80) lines.push(`${elapsed()}ms ${what}`);
    traces.set(eventId, lines);
  };
  const faults = { shopify: zeroes(SHOPIFY_FAULTS), customerio: zeroes(CUSTOMERIO_FAULTS) };
  const crashes = { soft: zeroes(CHECKPOINTS), hard: zeroes(CHECKPOINTS) };
  const begins = { acquired: 0, busy: 0, finished: 0, takeoversAfterHardCrash: 0 };
  const deadLeases = new Set<string>();
  let pollerErrors = 0;
  let chaos = true;

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
    checkpoint: (step, eventId) => {
      if (!chaos) return;
      // Every checkpoint gets at least one crash of each kind, then chance decides.
      let kind: CrashKind | undefined;
      if (crashRate > 0 && !crashes.soft[step]) kind = 'soft';
      else if (crashRate > 0 && hardCrashShare > 0 && !crashes.hard[step]) kind = 'hard';
      else if (crashRng() < crashRate) kind = crashRng() < hardCrashShare ? 'hard' : 'soft';
      if (!kind) {
        trace(eventId, `checkpoint ${step}`);
        return;
      }
      crashes[kind][step] = (crashes[kind][step] ?? 0) + 1;
      trace(eventId, `checkpoint ${step}: ${kind} crash`);
      if (kind === 'hard') deadLeases.add(eventId);
      throw new Error(`${kind === 'hard' ? HARD_CRASH : SOFT_CRASH} after ${step}`);
    },
  });

  // A hard crash is the process dying right after the step: the worker's error path (which frees
  // the lease, or records retries_exhausted) never runs, so the lease stays until it expires.
  const ledger = pipeline.ledger;
  const begin = ledger.begin.bind(ledger);
  const release = ledger.release.bind(ledger);
  const fail = ledger.fail.bind(ledger);
  ledger.begin = async (referral, input) => {
    const result = await begin(referral, input);
    if (result.outcome === 'acquired') {
      begins.acquired++;
      if (deadLeases.delete(referral.eventId)) begins.takeoversAfterHardCrash++;
    } else if (result.outcome === 'busy') begins.busy++;
    else begins.finished++;
    trace(referral.eventId, `begin ${result.outcome} by ${input.owner.slice(0, 8)} (attempts ${result.record?.attempts ?? '-'})`);
    return result;
  };
  ledger.release = async (eventId, owner, message) => {
    if (message.startsWith(HARD_CRASH)) return;
    trace(eventId, `release: ${message}`);
    return release(eventId, owner, message);
  };
  ledger.fail = async (eventId, owner, reason, message) => {
    if (message.startsWith(HARD_CRASH)) return false;
    const done = await fail(eventId, owner, reason, message);
    trace(eventId, `fail ${reason} (${done ? 'recorded' : 'not recorded'}): ${message}`);
    return done;
  };

  pipeline.shopify.setFaultPolicy(() => {
    if (!chaos || shopifyRng() >= faultRate) return undefined;
    // The first faults go through every kind once, so even a short run sees them all.
    const fault = SHOPIFY_FAULTS.find((kind) => faults.shopify[kind] === 0) ?? weighted(shopifyRng, SHOPIFY_WEIGHTS);
    faults.shopify[fault]++;
    return fault as ShopifyFault;
  });
  pipeline.customerio.setFaultPolicy(() => {
    if (!chaos || customerioRng() >= faultRate) return undefined;
    const fault = CUSTOMERIO_FAULTS.find((kind) => faults.customerio[kind] === 0) ?? weighted(customerioRng, CUSTOMERIO_WEIGHTS);
    faults.customerio[fault]++;
    return fault as CustomerIoFault;
  });

  const phases = { post: 0, settle: 0, late: 0, redrive: 0, check: 0 };
  const problems: ReferralProblem[] = [];
  const problem = (eventId: string, text: string) => {
    problems.push({ eventId, problem: text, trace: traces.get(eventId) ?? [] });
  };
  let ingestRetries = 0;
  const post = async (item: { body: unknown; uuid: string; expect: string }) => {
    for (let attempt = 1; ; attempt++) {
      const response = await pipeline.post(item.body);
      const got = response.statusCode === 202 ? 'queued' : response.statusCode === 422 ? 'rejected' : response.statusCode === 200 ? 'ignored' : 'error';
      trace(item.uuid, `webhook → ${response.statusCode}`);
      if (got === item.expect) return;
      if (response.statusCode >= 500 && attempt < 5) {
        ingestRetries++;
        await sleep(100 * attempt);
        continue;
      }
      problem(item.uuid, `ingest answered ${response.statusCode} ${JSON.stringify(response.body)}, expected ${item.expect}`);
      return;
    }
  };

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
    await mapConcurrent(stream, 8, post);
    phases.post = Date.now() - t;
    log(`  posted ${stream.length} webhooks in ${(phases.post / 1000).toFixed(1)} s`);

    t = Date.now();
    const settled = await settle(pipeline, startedAt + settleTimeoutMs);
    phases.settle = Date.now() - t;
    log(`  queue ${settled ? 'settled' : 'did NOT settle'} after ${(phases.settle / 1000).toFixed(1)} s`);

    // --- phase 2: copies of referrals that (mostly) finished, chaos still on ------------------
    t = Date.now();
    let lateCopiesOfFinished = 0;
    await mapConcurrent(late, 8, async (referral) => {
      const record = await pipeline.record(referral.uuid);
      if (record?.status === 'COMPLETED' || record?.status === 'REJECTED') lateCopiesOfFinished++;
      await post({ body: referral.body, uuid: referral.uuid, expect: 'queued' });
    });
    const lateSettled = await settle(pipeline, startedAt + settleTimeoutMs);
    phases.late = Date.now() - t;
    log(
      `  ${late.length} late copies (${lateCopiesOfFinished} of finished referrals) ` +
        `${lateSettled ? 'settled' : 'did NOT settle'} after ${(phases.late / 1000).toFixed(1)} s`,
    );
    await watch(pipeline.poller.stop(), 30_000, () => log('  still waiting for the pollers to stop after 30 s'));

    // --- phase 3: faults off, redrive whatever is in the DLQ, drain ---------------------------
    t = Date.now();
    chaos = false;
    pipeline.shopify.setFaultPolicy(undefined);
    pipeline.customerio.setFaultPolicy(undefined);
    const dead = await pipeline.deadLetters();
    const deadIds = [...new Set(dead.map((message) => messageEventId(message.Body)).filter((id): id is string => !!id))];
    const deadRecords = await mapConcurrent(deadIds, 16, (id) => pipeline.record(id));
    const deadLettered = {
      messages: dead.length,
      referrals: deadIds.length,
      failedWithReason: deadRecords.filter((r) => r?.status === 'FAILED' && !!r.failureReason).length,
      inProgress: deadRecords.filter((r) => r?.status === 'IN_PROGRESS').length,
      finished: deadRecords.filter((r) => r?.status === 'COMPLETED' || r?.status === 'REJECTED').length,
    };
    for (const id of deadIds) trace(id, 'in the DLQ after the chaos phases');
    // What an operator's redrive does (Pipeline.redrive), with the bodies kept for the snapshot above.
    for (const message of dead) {
      await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.resources.queueUrl, MessageBody: message.Body! }));
      await pipeline.sqs.send(
        new DeleteMessageCommand({ QueueUrl: pipeline.resources.deadLetterQueueUrl, ReceiptHandle: message.ReceiptHandle! }),
      );
    }
    let redriveRounds = dead.length > 0 ? 1 : 0;
    await pipeline.drain(120_000);
    // A referral whose lease a hard crash left behind may bounce once more until the lease expires.
    for (let round = 0; round < 5; round++) {
      const again = await pipeline.redrive();
      if (again === 0) break;
      redriveRounds++;
      log(`  redrive round ${redriveRounds}: ${again} messages`);
      await sleep(1_000);
      await pipeline.drain(120_000);
    }
    phases.redrive = Date.now() - t;
    log(`  redrove ${dead.length} dead letters (${deadIds.length} referrals) in ${redriveRounds} round(s), ${(phases.redrive / 1000).toFixed(1)} s`);

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

    // --- phase 4: the sequence cases, under the same faults, on a pipeline of their own -------
    const sequences = await runSequences({
      rounds: options.sequenceRounds ?? Math.max(2, Math.round(options.events / 500)),
      faultRate,
      rng: prng(seed, 6),
      shopifyFaults: SHOPIFY_FAULTS,
      customerioFaults: CUSTOMERIO_FAULTS,
      pollers,
      visibilityTimeoutSeconds,
      workerTimeoutMs,
      clientTimeoutMs,
      log,
    });
    problems.push(...sequences.problems);
    log(`  sequence cases: ${sequences.rounds} rounds, ${sequences.lost} lost, ${sequences.doubled} doubled`);

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
        duplicateRate, faultRate, crashRate, hardCrashShare, pollers, clientTimeoutMs, visibilityTimeoutSeconds, workerTimeoutMs,
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
      ingestRetries,
      faults: { ...faults, total: sum(faults.shopify) + sum(faults.customerio) },
      requests: {
        shopify: pipeline.shopify.requests.length,
        customerio: pipeline.customerio.requests.length,
        posthog: pipeline.posthog.captures.length,
        shopifyThrottledTotal: pipeline.shopify.throttledCount,
      },
      crashes: { ...crashes, total: sum(crashes.soft) + sum(crashes.hard) },
      ledgerBegins: begins,
      pollerErrors,
      deadLettered,
      redriveRounds,
      cardsCreated: pipeline.shopify.cards.length,
      eventsSent: pipeline.customerio.events.length,
      customerioDuplicatesIgnored: pipeline.customerio.duplicatesIgnored,
      codeCollisions: records.reduce((n, record) => n + (record?.codeCollisions ?? 0), 0),
      ...verdict,
      lost: verdict.lost + sequences.lost,
      doubled: verdict.doubled + sequences.doubled,
      sequences,
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
      report.statuses.unaccounted === 0 &&
      report.rewarded === report.expectedRewarded &&
      problems.length === 0;
    return report;
  } finally {
    clearInterval(progress);
    chaos = false;
    await pipeline.stop();
  }
}

/**
 * The referrals. Most are ordinary (each must be rewarded exactly once); a few are planted for
 * the program rules: self-referrals (refused), pairs of referrals of one redeemer by different
 * referrers (exactly one rewarded), and REFERRER_CAP + 2 referrals by one referrer (exactly
 * REFERRER_CAP rewarded). Which member of a group wins is up to the race, not the plan.
 */
function plan(events: number, seed: number, ruleRate: number, duplicateRate: number, rng: () => number): Planned[] {
  const planned: Planned[] = [];
  const capped = new Set<number>();
  if (ruleRate > 0 && events >= 5 * (REFERRER_CAP + 2)) {
    while (capped.size < REFERRER_CAP + 2) capped.add(Math.floor(rng() * events));
  }
  const cappedGroup: RuleGroup = { rule: 'referrer-cap', members: [], rewards: REFERRER_CAP };
  const pairable: Planned[] = [];
  let selfPlanted = 0;
  let pairsPlanted = 0;
  for (let index = 0; index < events; index++) {
    const uuid = seededUuid(rng);
    let kind: PlantedKind = 'normal';
    let referrerEmail = `referrer-${index}-${seed}@example.com`;
    let redeemerEmail = `redeemer-${index}-${seed}@example.com`;
    let group: RuleGroup | undefined;
    const r = rng();
    if (capped.has(index)) {
      kind = 'capped';
      referrerEmail = `capped-referrer-${seed}@example.com`;
      group = cappedGroup;
    } else if (ruleRate > 0 && (r < ruleRate / 2 || selfPlanted === 0)) {
      // The first eligible referral always is one, so every run has some.
      kind = 'self';
      redeemerEmail = referrerEmail;
      selfPlanted++;
    } else if (ruleRate > 0 && (r < ruleRate || pairsPlanted === 0) && pairable.length > 0) {
      kind = 'repeat-redeemer';
      pairsPlanted++;
      const first = pairable.splice(Math.floor(rng() * pairable.length), 1)[0];
      redeemerEmail = first.redeemerEmail;
      group = { rule: 'one-per-redeemer', members: [first], rewards: 1 };
      first.group = group;
    }
    const { body } = referralBody({ uuid, referrer: referrerEmail, redeemer: redeemerEmail });
    const extra: DuplicateMode[] = [];
    if (rng() < duplicateRate) {
      // One, two or three extra copies: 2–4 deliveries in all.
      const copies = pick(rng, [1, 1, 1, 1, 1, 1, 2, 2, 2, 3]);
      for (let copy = 0; copy < copies; copy++) {
        const m = rng();
        extra.push(m < 0.4 ? 'burst' : m < 0.75 ? 'spread' : 'late');
      }
    }
    const referral: Planned = { index, uuid, body, referrerEmail, redeemerEmail, kind, group, extra };
    group?.members.push(referral);
    if (kind === 'normal') pairable.push(referral);
    planned.push(referral);
  }
  return planned;
}

interface CountInput {
  planned: Planned[];
  /** The distinct rule groups of `planned`. */
  groups: ReadonlySet<RuleGroup>;
  records: (LedgerRecord | undefined)[];
  invalid: { uuid: string }[];
  invalidRecords: (LedgerRecord | undefined)[];
  cards: FakeGiftCard[];
  events: FakeTrackedEvent[];
  captures: FakeCapturedEvent[];
  problem: (eventId: string, text: string) => void;
}

/** Per referral: its cards (by note and code), its Customer.io event (by id), its ledger record, its PostHog capture. */
function count({ planned, groups, records, invalid, invalidRecords, cards, events, captures, problem }: CountInput) {
  const known = new Set(planned.map((referral) => referral.uuid));
  const cardsByEvent = groupBy(cards, (card) => parseGiftCardNote(card.note)?.eventId ?? '');
  const cardsByCode = groupBy(cards, (card) => card.code);
  const eventIdByUlid = new Map(planned.map((referral) => [ulidFromUuid(referral.uuid), referral.uuid]));
  const eventsByEvent = groupBy(events, (event) => eventIdByUlid.get(event.id.toUpperCase()) ?? '');
  const eventsByCodes = groupBy(events, (event) => `${event.data.discountreferrer}/${event.data.discountreferee}`.toUpperCase());
  const capturesByEvent = groupBy(captures, (capture) => String(capture.properties.referral_event_id ?? ''));

  let stray = 0;
  for (const card of cards) {
    const eventId = parseGiftCardNote(card.note)?.eventId;
    if (!eventId || !known.has(eventId)) {
      stray++;
      problem(eventId ?? '-', `card ${card.id} (…${card.code.slice(-4)}) belongs to no referral: note ${JSON.stringify(card.note)}`);
    }
  }
  for (const event of eventsByEvent.get('') ?? []) {
    stray++;
    problem('-', `Customer.io event ${event.id} belongs to no referral`);
  }
  for (const [index, bad] of invalid.entries()) {
    if (invalidRecords[index] || cardsByEvent.has(bad.uuid) || eventsByEvent.has(bad.uuid)) {
      stray++;
      problem(bad.uuid, 'an invalid webhook reached the ledger or the fakes');
    }
  }

  let lost = 0;
  let doubled = stray;
  let refusedButPaid = 0;
  let codeMismatches = 0;
  let captureMismatches = 0;
  const statuses = {
    completed: 0, rejected: 0, failed: 0, unaccounted: 0,
    rejectionReasons: {} as Record<string, number>, failureReasons: {} as Record<string, number>,
  };
  const rewardedIds = new Set<string>();
  planned.forEach((referral, index) => {
    const { uuid } = referral;
    const record = records[index];
    if (record?.status === 'COMPLETED') statuses.completed++;
    else if (record?.status === 'REJECTED' && record.rejectionReason) {
      statuses.rejected++;
      tally(statuses.rejectionReasons, record.rejectionReason);
    } else if (record?.status === 'FAILED' && record.failureReason) {
      statuses.failed++;
      tally(statuses.failureReasons, record.failureReason);
      problem(uuid, `FAILED (${record.failureReason}) after the redrive with faults off`);
    } else {
      statuses.unaccounted++;
      problem(uuid, `unaccounted for: ledger ${record ? `${record.status} without a reason` : 'has no record'}`);
    }

    const mine = cardsByEvent.get(uuid) ?? [];
    const referrerCards = mine.filter((card) => card.note === giftCardNote(uuid, 'referrer'));
    const redeemerCards = mine.filter((card) => card.note === giftCardNote(uuid, 'redeemer'));
    const sent = eventsByEvent.get(uuid) ?? [];
    const got = `${referrerCards.length} referrer card(s), ${redeemerCards.length} redeemer card(s), ${sent.length} event(s)`;
    const nothing = mine.length === 0 && sent.length === 0;
    const once = referrerCards.length === 1 && redeemerCards.length === 1 && sent.length === 1;

    if (referrerCards.length > 1 || redeemerCards.length > 1 || sent.length > 1) {
      doubled++;
      problem(uuid, `doubled: ${got}`);
    } else if (!once && !nothing) {
      lost++;
      problem(uuid, `half rewarded: ${got}`);
    }
    if (once) rewardedIds.add(uuid);

    if (referral.kind === 'self' && !nothing) {
      refusedButPaid++;
      problem(uuid, `a self-referral was paid: ${got}`);
    }
    if (referral.kind === 'normal' && !referral.group && nothing) {
      lost++;
      problem(uuid, `lost: no reward (ledger ${record?.status ?? 'none'} ${record?.rejectionReason ?? record?.failureReason ?? ''})`);
    }
    // The ledger must say what the fakes show.
    if (once && record?.status !== 'COMPLETED') problem(uuid, `rewarded but the ledger says ${record?.status}`);
    if (nothing && record?.status === 'COMPLETED') {
      lost++;
      problem(uuid, 'COMPLETED in the ledger but nothing on the fakes');
    }

    if (once) {
      const event = sent[0];
      const mailed = { referrer: String(event.data.discountreferrer ?? '').toUpperCase(), redeemer: String(event.data.discountreferee ?? '').toUpperCase() };
      const carded = { referrer: referrerCards[0].code, redeemer: redeemerCards[0].code };
      const ledgered = { referrer: record?.referrerCode?.toUpperCase(), redeemer: record?.redeemerCode?.toUpperCase() };
      const agree =
        mailed.referrer === carded.referrer && mailed.redeemer === carded.redeemer &&
        ledgered.referrer === carded.referrer && ledgered.redeemer === carded.redeemer &&
        record?.referrerCardId === referrerCards[0].id && record?.redeemerCardId === redeemerCards[0].id &&
        event.identifier === referral.redeemerEmail && event.data.referreremail === referral.referrerEmail &&
        [carded.referrer, carded.redeemer].every((code) => cardsByCode.get(code)?.length === 1) &&
        // By content too: no second event, under another id, carrying these codes.
        eventsByCodes.get(`${carded.referrer}/${carded.redeemer}`)?.length === 1;
      if (!agree) {
        codeMismatches++;
        problem(
          uuid,
          `mismatch: mailed …${mailed.referrer.slice(-4)}/…${mailed.redeemer.slice(-4)}, cards …${carded.referrer.slice(-4)}/…${carded.redeemer.slice(-4)}, ` +
            `ledger …${ledgered.referrer?.slice(-4)}/…${ledgered.redeemer?.slice(-4)} (${record?.referrerCardId}/${record?.redeemerCardId} vs ${referrerCards[0].id}/${redeemerCards[0].id})`,
        );
      }
    }

    // One outcome captured per finished referral (repeats of the same uuid are PostHog's to drop).
    const expected = record?.status === 'COMPLETED' ? 'referral reward fulfilled' : record?.status === 'REJECTED' ? 'referral reward rejected' : undefined;
    if (expected) {
      const mineCaptured = capturesByEvent.get(uuid) ?? [];
      const uuids = new Set(mineCaptured.map((capture) => capture.uuid));
      if (uuids.size !== 1 || mineCaptured.some((capture) => capture.event !== expected)) {
        captureMismatches++;
        problem(uuid, `PostHog: ${mineCaptured.length} capture(s) with ${uuids.size} uuid(s) (${[...new Set(mineCaptured.map((c) => c.event))].join(', ')}), expected one "${expected}"`);
      }
    }
  });

  // The rules' budgets: exactly one reward per redeemer, exactly REFERRER_CAP per referrer.
  for (const group of groups) {
    const paid = group.members.filter((member) => rewardedIds.has(member.uuid)).length;
    const who = `${group.rule} group ${group.members.map((member) => member.uuid.slice(0, 8)).join(',')}`;
    if (paid < group.rewards) {
      lost += group.rewards - paid;
      problem(group.members[0].uuid, `${who}: ${paid} rewarded, expected ${group.rewards}`);
    } else if (paid > group.rewards) {
      doubled += paid - group.rewards;
      problem(group.members[0].uuid, `${who}: ${paid} rewarded, only ${group.rewards} allowed`);
    }
  }
  return { statuses, rewarded: rewardedIds.size, lost, doubled, refusedButPaid, codeMismatches, stray, captureMismatches };
}

/** The figures as a markdown table. */
export function formatReport(report: SoakReport): string {
  const kinds = (counts: Record<string, number>) =>
    Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ') || 'none';
  const s = report.settings;
  const rows: [string, string][] = [
    ['events (distinct referrals)', `${report.events}`],
    [
      '… the rules must refuse',
      `${report.planted.selfReferrals} self-referrals, ${report.planted.repeatRedeemerPairs} pairs with one redeemer (one each paid), ` +
        `${report.planted.cappedReferrerReferrals} by one referrer (cap ${s.referrerCap} paid)`,
    ],
    ['webhook deliveries of them', `${report.deliveries}`],
    [
      'duplicates',
      `${report.duplicates} extra deliveries of ${report.duplicatedEvents} referrals (${pct(report.duplicatedEvents, report.events)}): ` +
        `${report.duplicatesBy.burst} back to back, ${report.duplicatesBy.spread} spread out, ` +
        `${report.duplicatesBy.afterCompletion} after the first run (${report.lateCopiesOfFinished} to finished referrals)`,
    ],
    ['invalid webhooks', `${report.invalidWebhooks.rejected} malformed (422), ${report.invalidWebhooks.ignored} other events (200)`],
    ['faults injected: Shopify', `${sum(report.faults.shopify)} of ${report.requests.shopify} requests (${kinds(report.faults.shopify)})`],
    ['faults injected: Customer.io', `${sum(report.faults.customerio)} of ${report.requests.customerio} requests (${kinds(report.faults.customerio)})`],
    ['crashes: soft (exception after the step)', `${sum(report.crashes.soft)} (${kinds(report.crashes.soft)})`],
    ['crashes: hard (process dies, lease left held)', `${sum(report.crashes.hard)} (${kinds(report.crashes.hard)})`],
    ['workers polling', `${s.pollers}`],
    [
      'ledger begins',
      `${report.ledgerBegins.acquired} acquired, ${report.ledgerBegins.busy} busy (lease held elsewhere), ` +
        `${report.ledgerBegins.finished} already finished, ${report.ledgerBegins.takeoversAfterHardCrash} takeovers after a hard crash`,
    ],
    [
      'dead-lettered, redriven with faults off',
      `${report.deadLettered.messages} messages of ${report.deadLettered.referrals} referrals ` +
        `(then ${report.deadLettered.failedWithReason} FAILED with a reason, ${report.deadLettered.inProgress} IN_PROGRESS, ${report.deadLettered.finished} finished); ` +
        `${report.redriveRounds} round(s)`,
    ],
    ['cards created', `${report.cardsCreated} (expected ${report.expectedRewarded * 2}; ${report.codeCollisions} codes replaced after colliding with another referral's card)`],
    ['events sent', `${report.eventsSent} (expected ${report.expectedRewarded}; ${report.customerioDuplicatesIgnored} resends dropped by id)`],
    [
      'ledger at the end',
      `${report.statuses.completed} COMPLETED, ${report.statuses.rejected} REJECTED (${kinds(report.statuses.rejectionReasons)}), ` +
        `${report.statuses.failed} FAILED${report.statuses.failed ? ` (${kinds(report.statuses.failureReasons)})` : ''}, ${report.statuses.unaccounted} unaccounted`,
    ],
    [
      'sequence cases (#10), faults on',
      `${report.sequences.rounds} rounds of ${SEQUENCE_CASES.join(', ')}: ${report.sequences.lost} lost, ${report.sequences.doubled} doubled, ` +
        `${report.sequences.expiryWrong} with a wrong expiry, ${report.sequences.misdirected} misdirected`,
    ],
    ['lost', `${report.lost}`],
    ['doubled', `${report.doubled}`],
    ['refused but paid', `${report.refusedButPaid}`],
    ['codes mailed ≠ codes on cards', `${report.codeMismatches}`],
    ['PostHog outcome captures wrong', `${report.captureMismatches}`],
    ['duration', `${(report.durationMs / 1000).toFixed(1)} s`],
  ];
  const header = `| figure | value |\n|---|---|\n`;
  const settings =
    `seed ${report.seed}; faults ${s.faultRate * 100} % per call; crash chance ${s.crashRate} per checkpoint (${s.hardCrashShare * 100} % hard); ` +
    `visibility timeout ${s.visibilityTimeoutSeconds} s, worker timeout ${s.workerTimeoutMs} ms, client timeout ${s.clientTimeoutMs} ms, maxReceiveCount ${s.maxReceiveCount}`;
  return `${header}${rows.map(([figure, value]) => `| ${figure} | ${value.replace(/\|/g, '\\|')} |`).join('\n')}\n\n${settings}. Result: **${report.ok ? 'PASS' : 'FAIL'}**`;
}

// --- helpers ---------------------------------------------------------------------------------

/** Awaits `promise`, calling `slow` once if it takes longer than `ms`. */
async function watch<T>(promise: Promise<T>, ms: number, slow: () => void): Promise<T> {
  const timer = setTimeout(slow, ms);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
  }
}

function messageEventId(body: string | undefined): string | undefined {
  try {
    const id = (JSON.parse(body ?? '') as { eventId?: unknown }).eventId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** sfc32 seeded from (seed, stream) through splitmix32: small, fast, and good enough for chaos. */
export function prng(seed: number, stream = 0): () => number {
  let state = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  const splitmix = () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

/** The n-th code of the pool: 8 characters of the production alphabet, distinct for distinct n. */
function pooledCode(n: number, seed: number): string {
  const space = CODE_ALPHABET.length ** 8;
  // An odd multiplier modulo 31^8 is a bijection: neighbours in the pool do not look alike.
  let value = (n * 2_654_435_761 + seed * 97) % space;
  let code = '';
  for (let i = 0; i < 8; i++) {
    code = CODE_ALPHABET[value % CODE_ALPHABET.length] + code;
    value = Math.floor(value / CODE_ALPHABET.length);
  }
  return code;
}

function seededUuid(rng: () => number): string {
  const bytes = Array.from({ length: 16 }, () => Math.floor(rng() * 256));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function weighted<K extends string>(rng: () => number, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as [K, number][];
  let r = rng() * entries.reduce((total, [, w]) => total + w, 0);
  for (const [kind, weight] of entries) {
    r -= weight;
    if (r < 0) return kind;
  }
  return entries[entries.length - 1][0];
}

function shuffle<T>(rng: () => number, items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

function tally(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((total, n) => total + n, 0);
}

function pct(part: number, whole: number): string {
  return `${whole ? ((100 * part) / whole).toFixed(1) : '0'} %`;
}
