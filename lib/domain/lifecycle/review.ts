/**
 * The operator's side of REVIEW (`npm run ops -- review ...`). Each decision is one conditional
 * write from REVIEW, so deciding twice, or two operators at once, changes the record once; the
 * follow-ups (budget, queue, PostHog) are idempotent and run again on a repeat, so a command
 * that died halfway is finished by running it again.
 */
import { PermanentError } from '../errors';
import type { OutcomeTracker } from '../notify-ports';
import { captureOutcome, type CaptureSubject } from './capture';
import { countApproved, returnShare } from './guards';
import type { LifecyclePort, LifecycleRecord } from './ledger-port';
import { sendRelease, type ReleaserDeps } from './release';

export interface ReviewDeps {
  ledger: LifecyclePort;
  /** Puts an approved referral back on the work queue at once (the releaser's enqueue). */
  enqueue: ReleaserDeps['enqueue'];
  /** With POSTHOG_API_KEY: a rejection is captured as `referral reward rejected` (reason reviewer_rejected). */
  posthog?: OutcomeTracker;
  rewardType?: string;
}

export interface ReviewOutcome {
  eventId: string;
  /** `approved`/`rejected` now, or `already` when an earlier run (or another operator) decided the same. */
  result: 'approved' | 'rejected' | 'already-approved' | 'already-rejected';
  status: string;
}

/** The referral is not in review (or was decided the other way): exit 1, record unchanged. */
export class NotInReviewError extends PermanentError {
  public constructor(eventId: string, status: string | undefined, decision?: string) {
    super('not_in_review', `referral ${eventId} is not in review (status ${status ?? 'none'}${decision ? `, reviewer ${decision}` : ''})`);
  }
}

/** REVIEW → HELD due now, counted against its budget periods, then its message goes back on the queue: the worker pays it, once. */
export async function approveReferral(deps: ReviewDeps, eventId: string, note?: string): Promise<ReviewOutcome> {
  const approved = await deps.ledger.approve(eventId, note);
  const record = approved ?? (await deps.ledger.get(eventId));
  if (record?.reviewDecision !== 'approved') throw new NotInReviewError(eventId, record?.status, record?.reviewDecision);
  // Counted only once the approval is written (never for a referral a concurrent reject or cancel
  // took), and again on a repeat: the count is once per referral, so a run that died between the
  // approval and the count is finished by the next.
  await countApproved(eventId, record.createdAt, deps.ledger, record.budgetCents ?? 0);
  // Sent now rather than at the releaser's next run; if this send is lost the releaser sends it.
  if (record.status === 'HELD') await sendRelease({ ...deps, resendAfterMs: 0 }, record);
  return { eventId, result: approved ? 'approved' : 'already-approved', status: record.status };
}

/** REVIEW → REJECTED (reviewer_rejected): its budget share (if any) returned, the outcome captured. Nothing was issued. */
export async function rejectReferral(deps: ReviewDeps, eventId: string, note?: string): Promise<ReviewOutcome> {
  const rejected = await deps.ledger.reject(eventId, note);
  const record = rejected ?? (await deps.ledger.get(eventId));
  if (record?.reviewDecision !== 'rejected') throw new NotInReviewError(eventId, record?.status, record?.reviewDecision);
  await returnShare(eventId, record.createdAt, deps.ledger, record.budgetCents ?? 0);
  if (deps.posthog) {
    await captureOutcome(deps.posthog, 'rejected', subjectOf(record), { rewardType: record.rewardType ?? deps.rewardType, rewardAmount: rewardAmountOf(record) }, { reason: 'reviewer_rejected' });
  }
  return { eventId, result: rejected ? 'rejected' : 'already-rejected', status: record.status };
}

/** The referral a capture is about, from its record (the queued message when it has one, for the PostHog distinct id). */
export function subjectOf(record: LifecycleRecord): CaptureSubject {
  let distinctId: string | undefined;
  try {
    // The ledger's copy first (fixed at begin); the parked message for records begun before it was stored.
    distinctId = record.distinctId ?? (record.parkedMessage ? (JSON.parse(record.parkedMessage) as { distinctId?: string }).distinctId : undefined);
  } catch {
    distinctId = undefined;
  }
  return { eventId: record.eventId, referrerEmail: record.referrerEmail, redeemerEmail: record.redeemerEmail, distinctId };
}

/** The reward each side got: fixed in the ledger at begin; older records only have their budget share. */
export const rewardAmountOf = (record: LifecycleRecord): string => record.rewardAmount ?? ((record.budgetCents ?? 0) / 200).toFixed(2);
