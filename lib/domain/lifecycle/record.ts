/**
 * The reward lifecycle's fields on a referral record, and the pure rules on them. Its writes are
 * domain steps (lib/domain/steps.ts) over the one ledger port (lib/domain/ledger-port.ts).
 */
import type { LedgerRecord } from '../ledger-port';

export type LifecycleQueue = 'held' | 'review' | 'awaiting' | 'revoking';
export type ReviewReason = 'budget' | 'velocity' | 'disposable_email' | 'shared_device' | 'shared_ip';

/** The lifecycle's attributes on a referral record. */
export interface LifecycleFields {
  lifecycleQueue?: LifecycleQueue;
  lifecycleAt?: number;
  /** The queue message (lib/domain/referral.ts), so the releaser can hand it back to the worker. */
  parkedMessage?: string;
  /** When the verdict parked it (a hold or review); a later hold of an approved referral keeps it. */
  parkedAt?: string;
  reviewReasons?: ReviewReason[];
  /** In REVIEW: its acceptance plus REWARD_HOLD (epoch ms), the earliest an approval releases it. */
  holdUntil?: number;
  reviewDecision?: 'approved' | 'rejected';
  reviewNote?: string;
  reviewedAt?: string;
  releasedAt?: string;
  revokeReason?: string;
  revokeRequestedAt?: string;
  revokedAt?: string;
  revokedBeforePayout?: boolean;
  referrerDeactivatedAt?: string;
  redeemerDeactivatedAt?: string;
  /** Gift cards: the balance left when deactivated, e.g. "25.00". */
  referrerBalanceLeft?: string;
  redeemerBalanceLeft?: string;
  revokeCapturedAt?: string;
  /** AWAITING: the deadline for the redeemer's qualifying event (epoch ms). */
  qualifyBy?: number;
  /** When a qualifying event moved it on, and which one (the event's uuid). */
  qualifiedAt?: string;
  qualifyingEventId?: string;
  /** When the releaser found it past its deadline (NOT_QUALIFIED). */
  notQualifiedAt?: string;
  /** NOT_QUALIFIED's follow-ups (claims released, capture, announcement) are done: it has left the index. */
  notQualifiedDoneAt?: string;
}

/** A referral's record: its lifecycle fields are part of LedgerRecord (lib/domain/ledger-port.ts). */
export type LifecycleRecord = LedgerRecord;

// Pure rules on the parked record, shared by the guards and the gate.

/** The UTC day and calendar month a referral's rewards count against: those of its first attempt, so every retry counts the same periods. */
export function budgetPeriods(createdAt: string): { day: string; month: string } {
  return { day: `day#${createdAt.slice(0, 10)}`, month: `month#${createdAt.slice(0, 7)}` };
}

/** Both rewards of one referral, in cents ("25.00" → 5000). */
export function referralCents(rewardAmount: string): number {
  return 2 * Math.round(Number(rewardAmount) * 100);
}

// Derived, not stored: each from the facts the record keeps (`npm run ops -- migrate` rewrote the
// records of earlier releases that stored them).

/** What its budget periods count for this referral: both rewards of the amount fixed at begin. */
export function budgetCentsOf(record: LedgerRecord): number {
  return record.rewardAmount ? referralCents(record.rewardAmount) : 0;
}

/** When it entered review: its verdict's park (it enters review only there). */
export function reviewSince(record: LedgerRecord): string | undefined {
  return record.reviewReasons ? record.parkedAt : undefined;
}

/** When it became HELD: its verdict's park, or the approval that moved it out of review. */
export function heldSince(record: LedgerRecord): string | undefined {
  return record.reviewReasons ? (record.reviewDecision === 'approved' ? record.reviewedAt : undefined) : record.parkedAt;
}
