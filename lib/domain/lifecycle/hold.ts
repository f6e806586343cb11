/**
 * The lifecycle's two questions in fulfilment (lib/domain/rewards.ts), asked once each per state of
 * the machine (lib/domain/machine.ts):
 *
 *   RECEIVED, the rules accepted: lifecycleVerdict — guards → review (with reasons), else
 *               REWARD_HOLD > 0 → hold until its acceptance plus REWARD_HOLD, else pay; stored by
 *               decide (lib/domain/steps.ts) before anything is created in Shopify or sent to Customer.io.
 *   HELD, taken up (due, or approved): takeUp — held again, or counted and released to be paid.
 *
 * A pay verdict is stored before the first Shopify call and never reached again (stateOf reads
 * PAYING from it): a retry after a create whose answer was lost must never park (and an operator
 * then cancel) a referral whose reward is live.
 */
import type { LifecycleConfig } from '../../infra/config';
import type { LedgerPort, LedgerRecord } from '../ledger-port';
import type { Verdict } from '../machine';
import type { Referral } from '../referral';
import type { OutcomeDetails, OutcomeTracker } from '../notify-ports';
import { captureOutcome } from './capture';
import { countApproved, reviewReasons, type GuardCounters, type SharedSignalsPort } from './guards';
import { decide, markReleased } from '../steps';
import { referralCents } from './record';

export interface LifecycleDeps {
  config: LifecycleConfig;
  /** The guards' counters (budgets, velocity); the referral's own writes go through fulfilment's ledger. */
  ledger: GuardCounters;
  /** PostHog's Query API for the shared device / IP guards (lib/domain/lifecycle/guards.ts); wired only while they are on. */
  sharedSignals?: SharedSignalsPort;
}

export interface GateContext {
  owner: string;
  rewardAmount: string;
  rewardType?: string;
  posthog?: OutcomeTracker;
  now: () => number;
  /** The caller's retry policy, bounded by its deadline. */
  retry: <T>(fn: () => Promise<T>) => Promise<T>;
}

/**
 * The lifecycle's verdict on an accepted referral: the guards' reads and budget claims (which admit
 * the same referral again), no write of its own. A hold is captured here, before the write that parks
 * it (and frees the lease): a crash in between captures again, with the same uuid.
 */
export async function lifecycleVerdict(
  referral: Referral,
  begun: LedgerRecord,
  deps: LifecycleDeps,
  context: GateContext,
): Promise<Verdict> {
  const { config } = deps;
  // From the first attempt's time, so a crash and retry do not push the release back.
  const holdUntil = Date.parse(begun.createdAt) + config.holdMs;
  // With every guard off this reads and writes nothing.
  const reasons = await reviewReasons(referral, begun.createdAt, { ...deps, cents: referralCents(context.rewardAmount) });
  if (reasons.length > 0) return { kind: 'review', reasons, holdUntil };
  if (config.holdMs > 0 && holdUntil > context.now()) {
    await capture(referral, context, 'held', { releaseAt: holdUntil });
    return { kind: 'hold', until: holdUntil };
  }
  return { kind: 'pay' };
}

/** A HELD referral a worker took up (due, or approved and due). */
export async function takeUp(
  referral: Referral,
  record: LedgerRecord,
  ledger: LedgerPort,
  deps: LifecycleDeps,
  context: GateContext,
): Promise<{ outcome: 'pay'; record: LedgerRecord } | { outcome: 'held'; releaseAt: number }> {
  const { eventId } = referral;
  if (record.reviewDecision === 'approved') {
    // Never before its acceptance plus REWARD_HOLD, as a clean referral waits: the approval
    // holds it until `holdUntil`, and this covers a record parked without one or a hold lengthened since.
    const holdUntil = Date.parse(record.createdAt) + deps.config.holdMs;
    if (holdUntil > context.now()) {
      await decide(ledger, eventId, context.owner, { kind: 'hold', until: holdUntil }, JSON.stringify(referral));
      return { outcome: 'held', releaseAt: holdUntil };
    }
    // Counted here, under the lease and before the first Shopify call, by every attempt until
    // one is released (once per referral): a revoke can no longer cancel it (it is taken up),
    // and a failed count fails this attempt before anything is paid.
    await countApproved(deps.ledger, record);
  }
  await capture(referral, context, 'released', record.reviewDecision ? { reviewDecision: record.reviewDecision } : undefined);
  return { outcome: 'pay', record: await markReleased(ledger, eventId, context.owner) };
}

async function capture(referral: Referral, context: GateContext, outcome: 'held' | 'released', extra?: OutcomeDetails): Promise<void> {
  const posthog = context.posthog;
  if (posthog) await context.retry(() => captureOutcome(posthog, outcome, referral, context, extra));
}
