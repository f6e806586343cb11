/**
 * The operator's side of REVIEW (`npm run ops -- review ...`). Each decision is one conditional
 * write from REVIEW, so deciding twice, or two operators at once, changes the record once; the
 * follow-ups (budget, queue, PostHog) are idempotent and run again on a repeat, so a command
 * that died halfway is finished by running it again.
 */
import { PermanentError } from '../errors';
import type { OutcomeTracker } from '../notify-ports';
import { captureOutcome } from './capture';
import { returnShare } from './guards';
import type { LedgerPort } from '../ledger-port';
import { approve, reject } from '../steps';
import type { LifecycleRecord } from './record';
import { sendRelease, type ReleaserDeps } from './release';

export interface ReviewDeps {
  ledger: LedgerPort;
  /** Puts an approved referral back on the work queue at once (the releaser's enqueue). */
  enqueue: ReleaserDeps['enqueue'];
  /** With POSTHOG_API_KEY: a rejection is captured as `referral reward rejected` (reason reviewer_rejected). */
  posthog?: OutcomeTracker;
}

export interface ReviewOutcome {
  eventId: string;
  /**
   * `approved`/`rejected` now, or `already` when an earlier run (or another operator) decided the
   * same; `revoked`: approved, but a revoke cancelled it before this command finished (nothing is paid).
   */
  result: 'approved' | 'rejected' | 'already-approved' | 'already-rejected' | 'revoked';
  status: string;
  /** An approved referral still HELD: when it is paid (epoch ms), its acceptance plus REWARD_HOLD at the earliest. */
  releaseAt?: number;
}

/** The referral is not in review (or was decided the other way): exit 1, record unchanged. */
export class NotInReviewError extends PermanentError {
  public constructor(eventId: string, status: string | undefined, decision?: string) {
    super('not_in_review', `referral ${eventId} is not in review (status ${status ?? 'none'}${decision ? `, reviewer ${decision}` : ''})`);
  }
}

/**
 * REVIEW → HELD until its acceptance plus REWARD_HOLD (at once when that has passed), then its
 * message goes back on the queue: the worker pays it, once, and counts it against its budget
 * periods when it takes it up (lib/domain/lifecycle/hold.ts). Nothing is counted here: a count
 * after this write could land on a referral a revoke cancelled meanwhile, and a count that failed
 * here would leave a referral the releaser pays anyway never counted.
 */
export async function approveReferral(deps: ReviewDeps, eventId: string, note?: string): Promise<ReviewOutcome> {
  const approved = await approve(deps.ledger, eventId, note);
  const record = approved ?? (await deps.ledger.get(eventId));
  // A REVOKED record keeps the decision it was approved with: a repeat must not report it approved.
  if (record?.reviewDecision !== 'approved' || (!approved && record.status === 'REVOKED')) {
    throw new NotInReviewError(eventId, record?.status, record?.reviewDecision);
  }
  // Sent now rather than at the releaser's next run when it is due; if this send is lost the releaser sends it.
  if (record.status === 'HELD' && Number(record.releaseAt) <= Date.now()) await sendRelease({ ...deps, resendAfterMs: 0 }, record);
  // Read again: a revoke may have cancelled it since the write above (then nothing is sent or paid).
  const current = (await deps.ledger.get(eventId)) ?? record;
  if (current.status === 'REVOKED') return { eventId, result: 'revoked', status: current.status };
  return {
    eventId,
    result: approved ? 'approved' : 'already-approved',
    status: current.status,
    ...(current.status === 'HELD' ? { releaseAt: Number(current.releaseAt) } : {}),
  };
}

/** REVIEW → REJECTED (reviewer_rejected): its budget share (if any) returned, the outcome captured. Nothing was issued. */
export async function rejectReferral(deps: ReviewDeps, eventId: string, note?: string): Promise<ReviewOutcome> {
  const rejected = await reject(deps.ledger, eventId, note);
  const record = rejected ?? (await deps.ledger.get(eventId));
  if (record?.reviewDecision !== 'rejected') throw new NotInReviewError(eventId, record?.status, record?.reviewDecision);
  await returnShare(deps.ledger, record);
  if (deps.posthog) await captureOutcome(deps.posthog, 'rejected', record, rewardOf(record), { reason: 'reviewer_rejected' });
  return { eventId, result: rejected ? 'rejected' : 'already-rejected', status: record.status };
}

/** The reward each side got: fixed in the ledger at begin (every parked record has it); `rewardType` for a record without its type. */
export function rewardOf(record: LifecycleRecord, rewardType?: string): { rewardType?: string; rewardAmount: string } {
  if (!record.rewardAmount) throw new PermanentError('ledger_incomplete', `ledger record ${record.eventId} has no reward amount`);
  return { rewardType: record.rewardType ?? rewardType, rewardAmount: record.rewardAmount };
}
