/**
 * The ledger as the domain sees it: the referral record, its states, and every write fulfilment
 * (lib/domain/rewards.ts), the per-person claims (lib/domain/claims.ts) and the worker's failure handling make.
 * lib/adapters/dynamodb/ledger.ts implements it on DynamoDB; tests/support/memory-ledger.ts in memory. Both are held
 * to one spec (tests/support/ledger-contract.ts), so the twin cannot drift from the conditional
 * writes the money paths rely on: begin admits a record only when open and free, codes are kept
 * from the first attempt, every step is fenced on the lease, a final record is never overwritten.
 */
import { RetryableError } from './errors';
import type { Verdict } from './machine';
import type { Referral } from './referral';

/** gift_card (default) or discount_code (for shops without the gift-card scopes): fixed per referral at begin. */
export const REWARD_TYPES = ['gift_card', 'discount_code'] as const;
export type RewardType = (typeof REWARD_TYPES)[number];

export type Role = 'referrer' | 'redeemer';
export const ROLES: readonly Role[] = ['referrer', 'redeemer'];

export type LedgerStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'REJECTED' | ParkedStatus;

/** The reward lifecycle's states (lib/domain/lifecycle/): waiting for a time, for an operator, or cancelled/voided. */
export type ParkedStatus = 'HELD' | 'REVIEW' | 'REVOKED';

/** Whether the program rules let this referral earn rewards: decided once, never re-evaluated. */
export type Decision = 'ACCEPTED' | 'REJECTED';

/** One referral's progress. Flat attributes so each step is a single SET, readable in the console. */
export interface LedgerRecord {
  pk: string;
  eventId: string;
  status: LedgerStatus;
  referrerEmail: string;
  redeemerEmail: string;
  customerEmail: string;
  /** The PostHog distinct id outcomes are captured under: the event's, else the redeemer's email. Fixed at begin. */
  distinctId?: string;
  /** What this referral pays, fixed at begin (REWARD_TYPE, REWARD_AMOUNT then): every retry pays the same way. */
  rewardType?: RewardType;
  rewardAmount?: string;
  referrerCode: string;
  redeemerCode: string;
  customerioEventId: string;
  /** Legacy (records begun before per-reward expiry): the one date both rewards were asked for. */
  expiresOn?: string;
  referrerCardId?: string;
  referrerCardAt?: string;
  /** YYYY-MM-DD the reward was issued with (recorded with its card id); absent when it never expires. */
  referrerExpiresOn?: string;
  redeemerCardId?: string;
  redeemerCardAt?: string;
  redeemerExpiresOn?: string;
  customerioAt?: string;
  posthogAt?: string;
  decision?: Decision;
  /**
   * The lifecycle gate said pay (lib/domain/lifecycle/hold.ts), stored before the first Shopify
   * call: no later attempt runs the gate again, so none can park a referral whose reward is live.
   */
  gatePassedAt?: string;
  rejectionReason?: string;
  rejectedAt?: string;
  attempts: number;
  codeCollisions?: number;
  /**
   * When Shopify first said `${role}TakenSeenCode` was taken and a complete look-up found only
   * strangers' rewards, for a code our earlier sends may have created (a lost answer): the code is
   * replaced only once that sighting is older than the confirmation window (lib/domain/rewards.ts).
   */
  referrerTakenSeenAt?: string;
  referrerTakenSeenCode?: string;
  redeemerTakenSeenAt?: string;
  redeemerTakenSeenCode?: string;
  lastError?: string;
  failureReason?: string;
  leaseOwner?: string;
  leaseExpiresAt?: number;
  createdAt: string;
  updatedAt: string;
  completedAt?: string;
  failedAt?: string;
  /** Epoch ms a HELD referral may be taken up (lib/domain/lifecycle/). */
  releaseAt?: number;
}

export type BeginResult =
  | { outcome: 'acquired'; record: LedgerRecord }
  | { outcome: 'completed'; record: LedgerRecord }
  | { outcome: 'rejected'; record: LedgerRecord }
  /** HELD before its release time, in REVIEW, or REVOKED: nothing to do until the lifecycle moves it (lib/domain/lifecycle/). */
  | { outcome: 'parked'; record: LedgerRecord & { status: ParkedStatus } }
  | { outcome: 'busy'; record?: LedgerRecord };

export interface BeginInput {
  owner: string;
  /** Epoch ms; past this another worker may take over (our invocation is dead by then). */
  leaseUntil: number;
  /** Used only if the record has none yet: codes are chosen once, before any call to Shopify. */
  codes: Record<Role, string>;
  customerioEventId: string;
  /** Kept if the record already has them, like the codes: a retry pays what the first attempt chose. */
  rewardType: RewardType;
  rewardAmount: string;
}

/** What a parked referral keeps: its queue message (the releaser hands it back) and both rewards' value in cents. */
export interface ParkedReferral {
  message: string;
  budgetCents: number;
}

export type FinalStatus = Extract<LedgerStatus, 'COMPLETED' | 'REJECTED'>;

/** The per-person claims (lib/domain/claims.ts): one redeemer item, one referrer item with its slots. */
export interface ClaimsPort {
  /** Claims the redeemer for `eventId`; the same referral may claim again, `staleHolder`'s claim is taken over. */
  claimRedeemer(person: string, eventId: string, staleHolder?: string): Promise<boolean>;
  /** Removes the redeemer's claim only if `eventId` holds it. */
  releaseRedeemer(person: string, eventId: string): Promise<void>;
  /** One of `cap` slots, each referral counted once: true if `eventId` holds one now (taken now or earlier). */
  claimReferrerSlot(person: string, eventId: string, cap: number): Promise<boolean>;
  /** Gives the slot back only if `eventId` holds it. */
  releaseReferrerSlot(person: string, eventId: string): Promise<void>;
  redeemerHolder(person: string): Promise<string | undefined>;
  referrerSlotHolders(person: string): Promise<string[]>;
  get(eventId: string): Promise<LedgerRecord | undefined>;
}

/**
 * One referral's record. `begin` takes it (or reports why not); every step after it takes the
 * caller's lease `owner` and throws LeaseLostError if another worker holds it (or, for
 * replaceCode, if `oldCode` is no longer the role's code). `fail` needs no lease of ours but never
 * overwrites a final, parked or actively held record; `release` ignores a lease already lost.
 */
export interface LedgerPort extends ClaimsPort {
  begin(referral: Referral, input: BeginInput): Promise<BeginResult>;
  recordCard(eventId: string, owner: string, role: Role, cardId: string, expiresOn?: string): Promise<LedgerRecord>;
  replaceCode(eventId: string, owner: string, role: Role, oldCode: string, newCode: string): Promise<LedgerRecord>;
  /** The first "taken, not ours" sighting of `code` (now); LeaseLostError too if `code` is no longer the role's code. */
  recordTakenSeen(eventId: string, owner: string, role: Role, code: string): Promise<LedgerRecord>;
  recordCustomerIo(eventId: string, owner: string, finish?: FinalStatus): Promise<LedgerRecord>;
  recordPostHog(eventId: string, owner: string, finish?: FinalStatus): Promise<LedgerRecord>;
  /**
   * Stores the verdict (lib/domain/machine.ts), once, in one write: a refusal with its reason, a
   * pay (before the first Shopify call), or a hold or review, which parks the referral (with
   * `parked`: the message the releaser hands back, the share a budget counts) and frees the lease.
   */
  decide(eventId: string, owner: string, verdict: Verdict, parked?: ParkedReferral): Promise<LedgerRecord>;
  /** Ends the referral as COMPLETED or REJECTED when no step of its own is left to carry the end. */
  finish(eventId: string, owner: string, status: FinalStatus): Promise<LedgerRecord>;
  /** True if the failure was recorded, false if the record is not ours to fail. */
  fail(eventId: string, owner: string, reason: string, message: string): Promise<boolean>;
  release(eventId: string, owner: string, message: string): Promise<void>;
}

/** The distinct id PostHog outcomes are captured under: the event's, else the redeemer's email (never empty). */
export function posthogDistinctId(referral: Pick<Referral, 'distinctId' | 'redeemerEmail'>): string {
  return referral.distinctId || referral.redeemerEmail;
}

/** Our lease was taken over: whoever holds it now finishes the referral; we must stop touching it. */
export class LeaseLostError extends RetryableError {
  public constructor(eventId: string) {
    super(`ledger: lease on ${eventId} is held by another worker`);
  }
}
