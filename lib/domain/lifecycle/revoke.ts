/**
 * `npm run ops -- revoke <eventId> --reason TEXT`. Payment's own discipline, for taking it back:
 * the intent is recorded first (the record stays COMPLETED, so no worker takes it up), each
 * deactivation is recorded as it is done, and REVOKED is written only when both are; a run that
 * died between the two deactivations is finished by the next run, and a repeated deactivation
 * is harmless. A referral still HELD, in REVIEW or waiting for qualification is cancelled in one
 * write before anything is issued, and its budget share is returned.
 */
import { PermanentError } from '../errors';
import { ROLES, type LedgerPort, type Role } from '../ledger-port';
import type { OutcomeTracker } from '../notify-ports';
import { captureOutcome } from './capture';
import { returnShare } from './guards';
import { cancel, finishRevoke, recordDeactivated, recordRevokeCaptured, requestRevoke } from '../steps';
import type { LifecycleRecord } from './record';
import { rewardOf } from './review';

/** The slice of the Shopify client revoking needs (lib/adapters/shopify/client.ts implements it). */
export interface RewardDeactivator {
  deactivateReward(id: string): Promise<{ balanceLeft?: string }>;
}

export interface RevokeDeps {
  ledger: LedgerPort;
  /** Needed only for a referral already paid. */
  shopify?: RewardDeactivator;
  posthog?: OutcomeTracker;
  /** Each reward's amount, for the capture of a paid referral (REWARD_AMOUNT). */
  rewardAmount: string;
}

export interface RevokeOutcome {
  eventId: string;
  result: 'cancelled' | 'revoked' | 'already-revoked';
  beforePayout: boolean;
  /** Gift cards: the balance left on each when deactivated. */
  balanceLeft: Partial<Record<Role, string>>;
}

export class CannotRevokeError extends PermanentError {
  public constructor(eventId: string, why: string) {
    super('cannot_revoke', `referral ${eventId} cannot be revoked: ${why}`);
  }
}

export async function revokeReferral(deps: RevokeDeps, eventId: string, reason: string): Promise<RevokeOutcome> {
  const { ledger } = deps;
  let record = await ledger.get(eventId);
  if (!record) throw new CannotRevokeError(eventId, 'no such referral in the ledger');
  let result: RevokeOutcome['result'] = 'already-revoked';

  if (record.status === 'HELD' || record.status === 'REVIEW' || record.status === 'AWAITING') {
    const cancelled = await cancel(ledger, eventId, reason);
    // Refused: a worker took it up meanwhile (its release time came); revoke it once it is paid.
    if (!cancelled) throw new CannotRevokeError(eventId, 'it is being paid right now; run revoke again in a minute');
    record = cancelled;
    result = 'cancelled';
  } else if (record.status === 'COMPLETED') {
    const requested = (await requestRevoke(ledger, eventId, reason)) ?? record;
    if (!deps.shopify) throw new CannotRevokeError(eventId, 'no Shopify credentials to deactivate its rewards');
    record = (await deactivateRequested(ledger, deps.shopify, requested)) ?? (await ledger.get(eventId))!;
    result = 'revoked';
  } else if (record.status !== 'REVOKED') {
    throw new CannotRevokeError(eventId, `its status is ${record.status}${record.status === 'REJECTED' ? ' (nothing was issued)' : ''}`);
  }

  // Resumable follow-ups, also on a repeat of a finished revoke.
  await revokedFollowUps(ledger, deps.posthog, record, {
    outcome: 'revoked',
    reason: record.revokeReason ?? reason,
    // A record begun before amounts were stored: today's REWARD_AMOUNT, a guess for the analytics event only.
    reward: (revoked) => ({ rewardType: revoked.rewardType, rewardAmount: revoked.rewardAmount ?? deps.rewardAmount }),
  });
  return {
    eventId,
    result,
    beforePayout: record.revokedBeforePayout === true,
    balanceLeft: Object.fromEntries(
      ROLES.flatMap((role) => (record![`${role}BalanceLeft`] ? [[role, record![`${role}BalanceLeft`]]] : [])),
    ),
  };
}

/**
 * What follows a REVOKED write, resumable (every path runs it again until it is done, and each
 * part is a no-op the second time): the budget share returned when nothing was paid, and the
 * outcome captured once (revokeCapturedAt). Shared by `ops revoke`, a refund's cancel
 * (lib/domain/qualify.ts) and the releaser's finish of a refund's revoke (release.ts).
 */
export async function revokedFollowUps(
  ledger: LedgerPort,
  posthog: OutcomeTracker | undefined,
  record: LifecycleRecord,
  capture: {
    outcome: 'revoked' | 'cancelled';
    reason: string;
    /** The reward the capture names; read only when it is captured. Default: the record's own. */
    reward?: (record: LifecycleRecord) => { rewardType?: string; rewardAmount: string };
  },
): Promise<void> {
  if (record.revokedBeforePayout) await returnShare(ledger, record);
  if (!posthog || record.revokeCapturedAt) return;
  await captureOutcome(posthog, capture.outcome, record, (capture.reward ?? rewardOf)(record), {
    reason: capture.reason,
    beforePayout: record.revokedBeforePayout === true,
  });
  await recordRevokeCaptured(ledger, record.eventId);
}

/**
 * Deactivates both rewards of a referral whose revoke is requested (COMPLETED, revokeRequestedAt),
 * each recorded as done, then COMPLETED → REVOKED in one conditional move. Undefined when that
 * move is refused (another run, or `ops revoke`, finished it first). Shared by `ops revoke` and the
 * releaser (a refund's revoke); only they import the deactivation itself.
 */
export async function deactivateRequested(
  ledger: LedgerPort,
  shopify: RewardDeactivator,
  start: LifecycleRecord,
): Promise<LifecycleRecord | undefined> {
  const eventId = start.eventId;
  let record = start;
  // One after the other: a crash leaves at most one done, recorded, and the next run does the other.
  for (const role of ROLES) {
    if (record[`${role}DeactivatedAt`]) continue;
    const cardId = record[`${role}CardId`];
    if (!cardId) throw new CannotRevokeError(eventId, `no ${role} reward id in the ledger`);
    const { balanceLeft } = await shopify.deactivateReward(cardId);
    record = (await recordDeactivated(ledger, eventId, role, balanceLeft)) ?? record;
  }
  return finishRevoke(ledger, eventId);
}
