/**
 * The soak's lifecycle rounds (issue #14), on a pipeline of their own with REWARD_HOLD (seconds)
 * and a PROGRAM_DAILY_BUDGET, under the main soak's faults and crashes (soak/faults.ts). Each
 * round posts a burst of referrals at once: those within the budget are HELD and paid by the real
 * releaser (lib/domain/lifecycle/release.ts, run on a loop that sometimes dies after claiming a send)
 * across duplicate webhooks and a redrive during the hold; the excess goes to REVIEW and is
 * approved or rejected (some twice, some by two operators at once) or revoked there; some held
 * referrals are revoked before payout, some paid ones after (one interrupted between its two
 * deactivations and resumed). Rounds alternate gift cards and discount codes. Counted by
 * soak/lifecycle-count.ts; the report's lost and doubled include these.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { loadShopifyConfig } from '../lib/infra/config';
import { budgetPeriods, type Ledger, type LifecycleRecord } from '../lib/adapters/dynamodb/ledger';
import { queueSender } from '../lib/adapters/sqs/queue';
import { releaseDue } from '../lib/domain/lifecycle/release';
import { approveReferral, rejectReferral, type ReviewDeps } from '../lib/domain/lifecycle/review';
import { revokeReferral, type RewardDeactivator } from '../lib/domain/lifecycle/revoke';
import { sleep } from '../lib/infra/retry';
import { deactivateReward } from '../lib/adapters/shopify/deactivation';
import { ShopifyTransport } from '../lib/adapters/shopify/transport';
import { tokenProviderFor } from '../lib/adapters/shopify/auth';
import { lifecycleIndex, lifecycleLedger } from '../tests/support/lifecycle';
import { referralBody } from '../tests/support/pipeline';
import { startChaosPipeline, type ChaosPhaseOptions } from './faults';
import { prng, settle, sum } from './harness';
import { countLifecycle, type LifecycleReport } from './lifecycle-count';
import type { ReferralProblem } from './report';

export type LifecycleOptions = ChaosPhaseOptions;

/** Referrals posted at once per round, and how many of them the budget has room for. */
const PER_ROUND = 12;
const ROOM_PER_ROUND = 6;
// Long enough that the watch below (one ledger read per referral, a post or a redrive for some)
// still finds several of them HELD on a loaded 2-core machine.
const HOLD = '8s';
const REWARD_AMOUNT = '25.00';
/** What an operator does with a referral in review, in turn (so every round sees each). */
const DECISIONS = ['approve-and-reject', 'approve', 'reject', 'revoke', 'approve-and-approve', 'approve-twice', 'reject-twice'] as const;
type Decision = (typeof DECISIONS)[number];

export async function runLifecycle(options: LifecycleOptions): Promise<LifecycleReport> {
  const problems: ReferralProblem[] = [];
  const problem = (eventId: string, text: string) => problems.push({ eventId, problem: text, trace: [] });
  const rng = prng(options.seed, 7);
  const limitCents = options.rounds * ROOM_PER_ROUND * 2 * 2_500;
  const { chaos, pipeline } = await startChaosPipeline(
    options,
    { shopify: 8, customerio: 9, crash: 10 },
    { REWARD_HOLD: HOLD, PROGRAM_DAILY_BUDGET: String(limitCents / 100), REWARD_AMOUNT },
  );
  const ledger = lifecycleLedger(pipeline);
  const report: LifecycleReport = {
    rounds: options.rounds,
    referrals: 0,
    hold: { held: 0, released: 0, duplicatesDuringHold: 0, redrivesDuringHold: 0, releaserRuns: 0, releaserCrashes: 0 },
    review: { sentToReview: 0, approved: 0, rejected: 0, repeated: 0, concurrent: 0, refusedSecondDecisions: 0 },
    revoke: { paid: 0, held: 0, inReview: 0, interrupted: 0, resumedAfterFault: 0 },
    crashes: 0,
    faults: 0,
    budget: { limitCents, spentCents: 0, approvedCents: 0 },
    issuedWhileParked: 0,
    approvedNotPaidOnce: 0,
    issuedAfterRefusal: 0,
    overBudgetCents: 0,
    budgetMiscounted: 0,
    revokedStillActive: 0,
    unfinished: 0,
    lost: 0,
    doubled: 0,
    ok: false,
    problems,
  };

  // The releaser as the schedule runs it, every 300 ms; now and then a run dies right after
  // claiming a send (the message is lost), which a later run sends again once resendAfterMs passed.
  const releaserLedger = Object.assign(Object.create(ledger) as Ledger, {
    move: async (...args: Parameters<Ledger['move']>) => {
      const claimed = await ledger.move(...args);
      if (args[2].step === 'claimReleaseSend' && claimed && chaos.on && rng() < 0.15) {
        report.hold.releaserCrashes++;
        throw new Error('chaos: the releaser died after claiming the send');
      }
      return claimed;
    },
  });
  let releasing = true;
  const releaser = (async () => {
    while (releasing) {
      report.hold.releaserRuns++;
      await releaseDue({
        ledger: releaserLedger,
        index: lifecycleIndex(pipeline),
        enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl),
        resendAfterMs: 1_000,
      }).catch(() => undefined);
      await sleep(300);
    }
  })();

  const shopify = new ShopifyTransport({
    baseUrl: pipeline.shopify.url,
    apiVersion: loadShopifyConfig(pipeline.env).apiVersion,
    auth: tokenProviderFor(pipeline.shopify.url, loadShopifyConfig(pipeline.shopify.env).auth),
    timeoutMs: options.clientTimeoutMs,
    pacer: false,
  });
  const reviewDeps: ReviewDeps = { ledger, enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl) };
  const seenParked = new Map<string, 'HELD' | 'REVIEW'>();
  const uuids: string[] = [];

  /** Revokes until it goes through (an operator runs it again after a failure); `interrupt` dies once between the two deactivations. */
  const revoke = async (uuid: string, interrupt = false): Promise<LifecycleRecord | undefined> => {
    let deactivated = 0;
    let interrupted = false;
    const deactivator: RewardDeactivator = {
      deactivateReward: async (id) => {
        if (interrupt && !interrupted && deactivated > 0) {
          interrupted = true;
          throw new Error('chaos: revoke died between the deactivations');
        }
        const done = await deactivateReward(shopify, id);
        deactivated++;
        return done;
      },
    };
    for (let attempt = 1; attempt <= 20; attempt++) {
      try {
        await revokeReferral({ ledger, shopify: deactivator, rewardAmount: REWARD_AMOUNT }, uuid, 'soak: order returned');
        return ledger.get(uuid);
      } catch (error) {
        const message = String((error as Error).message);
        if (/between the deactivations/.test(message)) {
          report.revoke.interrupted++;
          const halfway = await ledger.get(uuid);
          if (halfway?.status !== 'COMPLETED' || Boolean(halfway.referrerDeactivatedAt) === Boolean(halfway.redeemerDeactivatedAt)) {
            problem(uuid, 'lifecycle: the interrupted revoke did not stop with exactly one reward deactivated');
          }
        } else if (/being paid right now/.test(message)) await sleep(500);
        else report.revoke.resumedAfterFault++;
      }
    }
    problem(uuid, 'lifecycle: revoke never went through');
    return ledger.get(uuid);
  };

  pipeline.poller.start(options.pollers);
  try {
    for (let round = 0; round < options.rounds; round++) {
      pipeline.env.REWARD_TYPE = round % 2 === 0 ? 'gift_card' : 'discount_code';
      const bodies = Array.from({ length: PER_ROUND }, (_, i) =>
        referralBody({ referrer: `lifecycle-${options.seed}-${round}-${i}@example.com` }),
      );
      uuids.push(...bodies.map((b) => b.uuid));
      // At once, a third of them twice: the budget's counter is raced for.
      await Promise.all(
        bodies.flatMap(({ body }, i) => (i % 3 === 0 ? [pipeline.post(body), pipeline.post(body)] : [pipeline.post(body)])),
      );

      // Watch them park: the first two seen HELD are revoked at once, the next get a duplicate or a redrive.
      const toRevokeHeld = new Set<string>();
      const revokesOfHeld: Promise<void>[] = [];
      const until = Date.now() + 60_000;
      let heldSeen = 0;
      for (let pending = bodies.length; pending > 0 && Date.now() < until;) {
        pending = 0;
        for (const { uuid, body } of bodies) {
          const record = await ledger.get(uuid);
          if (record?.status === 'HELD' || record?.status === 'REVIEW') {
            if (
              pipeline.shopify.cards.some((c) => c.note?.includes(uuid)) ||
              pipeline.shopify.discounts.some((d) => d.title.includes(uuid))
            ) {
              report.issuedWhileParked++;
              problem(uuid, `lifecycle: a reward exists while ${record.status}`);
            }
            if (!seenParked.has(uuid)) {
              seenParked.set(uuid, record.status);
              if (record.status === 'REVIEW') report.review.sentToReview++;
              else {
                report.hold.held++;
                const nth = heldSeen++;
                if (nth < 2) toRevokeHeld.add(uuid);
                else if (nth % 2 === 0) {
                  report.hold.duplicatesDuringHold++;
                  await pipeline.post(body);
                } else if (record.parkedMessage) {
                  report.hold.redrivesDuringHold++;
                  await pipeline.sqs.send(
                    new SendMessageCommand({ QueueUrl: pipeline.resources.deadLetterQueueUrl, MessageBody: record.parkedMessage }),
                  );
                  await pipeline.redrive();
                }
              }
            }
            // Beside the watch, not inside it: a revoke retried through chaos faults can take longer
            // than the hold, and the watch must still see the round's other referrals HELD.
            if (toRevokeHeld.delete(uuid)) {
              revokesOfHeld.push(
                revoke(uuid).then((after) => {
                  if (after?.revokedBeforePayout) report.revoke.held++;
                  else if (after?.status === 'REVOKED') report.revoke.paid++;
                }),
              );
            }
          }
          if (!record || record.status === 'IN_PROGRESS' || (record.status === 'HELD' && !seenParked.has(uuid))) pending++;
          if (record?.status === 'HELD') pending++;
        }
        await sleep(150);
      }
      await Promise.all(revokesOfHeld);
      await settle(pipeline, Date.now() + 60_000);

      // The review queue: decided in turn.
      const inReview = (await Promise.all(bodies.map(({ uuid }) => ledger.get(uuid)))).filter((r) => r?.status === 'REVIEW');
      await Promise.all(inReview.map((record, i) => decide(record!.eventId, DECISIONS[(i + round) % DECISIONS.length])));
      await settle(pipeline, Date.now() + 60_000);
      await waitUntilPaid(bodies.map((b) => b.uuid));

      // Revoke two paid referrals of the round, the first interrupted between its deactivations.
      const paid = (await Promise.all(bodies.map(({ uuid }) => ledger.get(uuid)))).filter((r) => r?.status === 'COMPLETED').slice(0, 2);
      for (const [i, record] of paid.entries()) {
        const after = await revoke(record!.eventId, i === 0);
        if (after?.status === 'REVOKED') report.revoke.paid++;
      }
      options.log(`  lifecycle round ${round + 1}: ${bodies.length} referrals, ${inReview.length} to review`);
    }
    await pipeline.poller.stop();

    // Faults off, redrive, drain, a last release: what is owed must be paid now.
    chaos.on = false;
    for (let round = 0; round < 5 && (await pipeline.redrive()) > 0; round++) await pipeline.drain(120_000);
    await pipeline.drain(120_000);
    // Referrals that reached review only through the redrive (a crash's lease outlived the round) are decided now.
    const late = (await Promise.all(uuids.map((uuid) => ledger.get(uuid)))).filter((r) => r?.status === 'REVIEW');
    report.review.sentToReview += late.filter((r) => !seenParked.has(r!.eventId)).length;
    await Promise.all(late.map((record, i) => decide(record!.eventId, DECISIONS[i % DECISIONS.length])));
    await waitUntilPaid(uuids, true);
  } finally {
    releasing = false;
    await releaser;
    chaos.on = false;
    await pipeline.stop();
  }

  const records = (await Promise.all(uuids.map((uuid) => ledger.get(uuid)))).filter((r): r is LifecycleRecord => !!r);
  for (const uuid of uuids) if (!records.some((r) => r.eventId === uuid)) problem(uuid, 'lifecycle: no ledger record');
  report.referrals = uuids.length;
  report.hold.released = records.filter((r) => r.releasedAt && r.reviewDecision === undefined).length;
  report.review.approved = records.filter((r) => r.reviewDecision === 'approved').length;
  report.review.rejected = records.filter((r) => r.reviewDecision === 'rejected').length;
  report.crashes = sum(chaos.crashes.soft) + sum(chaos.crashes.hard);
  report.faults = sum(chaos.faults.shopify) + sum(chaos.faults.customerio);
  const days = [...new Set(records.map((r) => budgetPeriods(r.createdAt).day))];
  const spent = new Map(await Promise.all(days.map(async (day) => [day, await ledger.spent(day)] as const)));
  for (const card of pipeline.shopify.cards) {
    const record = records.find((r) => card.note?.includes(r.eventId));
    const from = Number(record?.releaseAt);
    if (record && Number.isFinite(from) && Date.parse(card.createdAt) < from) {
      report.issuedWhileParked++;
      problem(record.eventId, `lifecycle: card created at ${card.createdAt}, before the release time`);
    }
  }
  const verdict = countLifecycle({
    records,
    cards: pipeline.shopify.cards,
    discounts: pipeline.shopify.discounts,
    events: pipeline.customerio.events,
    spent,
    limitCents,
    rewardAmount: REWARD_AMOUNT,
    problem,
  });
  Object.assign(report, verdict, { budget: { limitCents, spentCents: verdict.spentCents, approvedCents: verdict.approvedCents } });
  delete (report as Partial<typeof verdict>).spentCents;
  delete (report as Partial<typeof verdict>).approvedCents;
  report.lost += records.length < uuids.length ? uuids.length - records.length : 0;
  report.ok =
    report.issuedWhileParked +
      report.approvedNotPaidOnce +
      report.issuedAfterRefusal +
      report.overBudgetCents +
      report.budgetMiscounted +
      report.revokedStillActive +
      report.unfinished +
      report.lost +
      report.doubled ===
      0 && problems.length === 0;
  return report;

  /** One operator decision (or two at once); the losing side of a conflict is refused with "not in review". */
  async function decide(uuid: string, decision: Decision): Promise<void> {
    const approve = () => approveReferral(reviewDeps, uuid, 'soak');
    const reject = () => rejectReferral(reviewDeps, uuid, 'soak');
    const steps: Record<Decision, () => Promise<unknown>[]> = {
      approve: () => [approve()],
      reject: () => [reject()],
      'approve-twice': () => [approve().then(approve)],
      'reject-twice': () => [reject().then(reject)],
      'approve-and-approve': () => [approve(), approve()],
      'approve-and-reject': () => [approve(), reject()],
      revoke: () => [revoke(uuid).then((after) => (after?.revokedBeforePayout ? report.revoke.inReview++ : undefined))],
    };
    if (decision.endsWith('-twice')) report.review.repeated++;
    if (decision.includes('-and-')) report.review.concurrent++;
    const results = await Promise.allSettled(steps[decision]());
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      if (/not in review/.test(String((result.reason as Error)?.message)) && decision === 'approve-and-reject')
        report.review.refusedSecondDecisions++;
      else problem(uuid, `lifecycle: ${decision} failed: ${String((result.reason as Error)?.message ?? result.reason)}`);
    }
  }

  /** Waits (bounded) until none of these is HELD, approved-but-unpaid or mid-payment; `final` also re-runs the releaser's job directly. */
  async function waitUntilPaid(ids: string[], final = false): Promise<void> {
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const records = await Promise.all(ids.map((uuid) => ledger.get(uuid)));
      if (!records.some((r) => r?.status === 'HELD' || r?.status === 'IN_PROGRESS')) return;
      if (final) await pipeline.drain(30_000);
      await sleep(300);
    }
  }
}
