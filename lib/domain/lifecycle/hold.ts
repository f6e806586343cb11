/**
 * The lifecycle's one hook into fulfilment (lib/domain/rewards.ts), after the rules ACCEPTED a referral
 * and before its first reward is created:
 *
 *   first time     guards → REVIEW (with reasons), else REWARD_HOLD > 0 → HELD until releaseAt,
 *                  else pay now. Parking frees the lease in the same write; nothing is created
 *                  in Shopify or sent to Customer.io while parked.
 *   taken up again (a due HELD record, or an approved one): an approved one is held again
 *                  if its acceptance plus REWARD_HOLD is still ahead, else counted against its
 *                  budget periods; out of the index, `released` captured, pay.
 *
 * A "pay" verdict is stored (the ledger's `gatePassedAt`, lib/domain/rewards.ts) before the first
 * Shopify call, and the gate is not run again once it is: a retry after a create whose answer was
 * lost must never park (and an operator then cancel) a referral whose reward is live.
 *
 * The codes were chosen and stored by `begin` before this runs, as for every referral.
 */
import type { LifecycleConfig } from '../../infra/config';
import type { LedgerRecord } from '../ledger-port';
import type { Referral } from '../referral';
import type { OutcomeDetails, OutcomeTracker } from '../notify-ports';
import { captureOutcome } from './capture';
import { countApproved, guardsOn, reviewReasons, type SharedSignalsPort } from './guards';
import { referralCents, type WorkerLifecyclePort, type LifecycleRecord, type ReviewReason } from './ledger-port';

export interface LifecycleDeps {
  config: LifecycleConfig;
  ledger: WorkerLifecyclePort;
  /** Test seam for the disposable-domain list. */
  isDisposable?: (email: string) => boolean;
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

export type GateResult =
  | { outcome: 'pay'; record: LedgerRecord }
  | { outcome: 'held'; releaseAt: number }
  | { outcome: 'review'; reasons: ReviewReason[] };

/** The first-time verdict alone: the guards' reads and budget claims (which admit the same referral again), no parking. */
export type GateVerdict = { outcome: 'pay' } | { outcome: 'held'; releaseAt: number } | { outcome: 'review'; reasons: ReviewReason[] };

export async function lifecycleVerdict(referral: Referral, begun: LedgerRecord, deps: LifecycleDeps, context: GateContext): Promise<GateVerdict> {
  const { config } = deps;
  if (guardsOn(config)) {
    const cents = referralCents(context.rewardAmount);
    const reasons = await reviewReasons(referral, begun.createdAt, {
      config,
      ledger: deps.ledger,
      cents,
      isDisposable: deps.isDisposable,
      sharedSignals: deps.sharedSignals,
    });
    if (reasons.length > 0) return { outcome: 'review', reasons };
  }
  if (config.holdMs > 0) {
    // From the first attempt's time, so a crash and retry do not push the release back.
    const releaseAt = Date.parse(begun.createdAt) + config.holdMs;
    if (releaseAt > context.now()) return { outcome: 'held', releaseAt };
  }
  return { outcome: 'pay' };
}

/**
 * `verdict`: one lifecycleVerdict reached earlier in this attempt (before the decision's write);
 * without it the verdict is reached here. `fresh` on a pay: reached now, not yet stored.
 */
export async function lifecycleGate(
  referral: Referral,
  begun: LedgerRecord,
  deps: LifecycleDeps,
  context: GateContext,
  verdict?: GateVerdict,
): Promise<GateResult & { fresh?: boolean }> {
  const record = begun as LifecycleRecord;
  const { ledger } = deps;
  const { owner } = context;
  const capture = async (outcome: 'held' | 'released', extra?: OutcomeDetails) => {
    const posthog = context.posthog;
    if (posthog) await context.retry(() => captureOutcome(posthog, outcome, referral, context, extra));
  };

  const message = JSON.stringify(referral);
  const budgetCents = referralCents(context.rewardAmount);
  if (record.parkedAt) {
    // Taken up after a hold or an approval: leave the index first, so the releaser stops sending it.
    if (!record.releasedAt) {
      if (record.reviewDecision === 'approved') {
        // Never before its acceptance plus REWARD_HOLD, as a clean referral waits: the approval
        // holds it until `holdUntil`, and this covers a record parked without one or a hold lengthened since.
        const holdUntil = Date.parse(record.createdAt) + deps.config.holdMs;
        if (holdUntil > context.now()) {
          await ledger.park(referral.eventId, owner, { status: 'HELD', releaseAt: holdUntil, message, budgetCents: record.budgetCents ?? budgetCents });
          return { outcome: 'held', releaseAt: holdUntil };
        }
        // Counted here, under the lease and before the first Shopify call, by every attempt until
        // one is released (once per referral): a revoke can no longer cancel it (it is taken up),
        // and a failed count fails this attempt before anything is paid.
        await countApproved(referral.eventId, record.createdAt, ledger, record.budgetCents ?? budgetCents);
      }
      await capture('released', record.reviewDecision ? { reviewDecision: record.reviewDecision } : undefined);
      return { outcome: 'pay', record: await ledger.markReleased(referral.eventId, owner) };
    }
    return { outcome: 'pay', record };
  }
  // A reward already created means an earlier attempt passed this gate: never park a half-paid referral.
  if (record.gatePassedAt || record.referrerCardId || record.redeemerCardId || record.customerioAt) return { outcome: 'pay', record };

  const reached = verdict ?? (await lifecycleVerdict(referral, record, deps, context));
  if (reached.outcome === 'review') {
    const holdUntil = Date.parse(record.createdAt) + deps.config.holdMs;
    await ledger.park(referral.eventId, owner, { status: 'REVIEW', reasons: reached.reasons, message, budgetCents, holdUntil });
    return reached;
  }
  if (reached.outcome === 'held') {
    const { releaseAt } = reached;
    // Captured before the write that frees the lease: a crash in between captures again, with the same uuid.
    await capture('held', { releaseAt });
    await ledger.park(referral.eventId, owner, { status: 'HELD', releaseAt, message, budgetCents });
    return reached;
  }
  return { outcome: 'pay', record, fresh: true };
}
