/**
 * The reward lifecycle's ledger as the lifecycle (hold, review, revoke, releaser) sees it: the
 * parked record's fields and every transition. lib/adapters/dynamodb/lifecycle-ledger.ts implements it on DynamoDB,
 * each transition one conditional write (fenced on the worker's lease, or on the status an
 * operator moves it from); `undefined` from an operator's transition means its condition refused.
 */
import type { LedgerRecord, Role } from '../ledger-port';

export type LifecycleQueue = 'held' | 'review';
export type ReviewReason = 'budget' | 'velocity' | 'disposable_email';

/** The lifecycle's attributes on a referral record. */
export interface LifecycleFields {
  lifecycleQueue?: LifecycleQueue;
  lifecycleAt?: number;
  /** The queue message (lib/domain/referral.ts), so the releaser can hand it back to the worker. */
  parkedMessage?: string;
  parkedAt?: string;
  heldAt?: string;
  reviewReasons?: ReviewReason[];
  reviewSince?: string;
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
  budgetCents?: number;
}

export type LifecycleRecord = LedgerRecord & LifecycleFields;

/** What the worker writes (under its lease) and reads: its bundle carries only this part (lib/adapters/dynamodb/lifecycle-worker-ledger.ts). */
export interface WorkerLifecyclePort {
  /** Worker, under its lease: a taken-up HELD referral leaves the index. */
  markReleased(eventId: string, owner: string): Promise<LifecycleRecord>;
  /** Counts `cents` once per referral against a period, refused past `limitCents` when given. */
  reserveBudget(period: string, eventId: string, cents: number, limitCents?: number): Promise<boolean>;
  returnBudget(period: string, eventId: string, cents: number): Promise<boolean>;
  /**
   * The referrer's referrals within `windowMs` up to this one's first sighting, this one included,
   * counted up to `cap` (min(count, cap): the guard needs only "more than N"); a retry gets the first answer.
   */
  referrerVelocity(person: string, eventId: string, windowMs: number, cap: number): Promise<number>;
}

/** Everything: the worker's part, the releaser's and the operator's (review, revoke). */
export interface LifecyclePort extends WorkerLifecyclePort {
  /** Operator: REVIEW → HELD until `holdUntil` (due now without one). */
  approve(eventId: string, note: string | undefined): Promise<LifecycleRecord | undefined>;
  /** Operator: REVIEW → REJECTED. */
  reject(eventId: string, note: string | undefined): Promise<LifecycleRecord | undefined>;
  /** Operator: HELD or REVIEW → REVOKED before payout. */
  cancel(eventId: string, reason: string): Promise<LifecycleRecord | undefined>;
  /** Operator: a COMPLETED referral is to be revoked. */
  requestRevoke(eventId: string, reason: string): Promise<LifecycleRecord | undefined>;
  recordDeactivated(eventId: string, role: Role, balanceLeft: string | undefined): Promise<LifecycleRecord | undefined>;
  /** COMPLETED → REVOKED once both rewards are deactivated. */
  finishRevoke(eventId: string): Promise<LifecycleRecord | undefined>;
  recordRevokeCaptured(eventId: string): Promise<LifecycleRecord | undefined>;
  budgetSpent(period: string): Promise<{ cents: number; referrals: number }>;
  /** The releaser's claim to send a due referral's message now. */
  claimReleaseSend(eventId: string, resendAfterMs: number): Promise<boolean>;
  /** Referrals waiting in `queue` up to `until` (epoch ms), oldest first. */
  waiting(queue: LifecycleQueue, until?: number, limit?: number): Promise<LifecycleRecord[]>;
  get(eventId: string): Promise<LifecycleRecord | undefined>;
}

// Pure rules on the parked record, shared by the guards and the gate (and so beside the port, not in the adapter).

/** The UTC day and calendar month a referral's rewards count against: those of its first attempt, so every retry counts the same periods. */
export function budgetPeriods(createdAt: string): { day: string; month: string } {
  return { day: `day#${createdAt.slice(0, 10)}`, month: `month#${createdAt.slice(0, 7)}` };
}

/** Both rewards of one referral, in cents ("25.00" → 5000). */
export function referralCents(rewardAmount: string): number {
  return 2 * Math.round(Number(rewardAmount) * 100);
}
