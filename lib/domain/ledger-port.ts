/**
 * The ledger as the domain sees it: the referral record, its states, and every write fulfilment
 * (lib/domain/rewards.ts), the per-person claims (lib/domain/claims.ts) and the worker's failure handling make.
 * lib/adapters/dynamodb/ledger.ts implements it on DynamoDB; tests/support/memory-ledger.ts in memory. Both are held
 * to one spec (tests/support/ledger-contract.ts), so the twin cannot drift from the conditional
 * writes the money paths rely on: begin admits a record only when open and free, codes are kept
 * from the first attempt, every step is fenced on the lease, a final record is never overwritten.
 */
import { RetryableError } from './errors';
import type { LifecycleFields, LifecycleQueue, LifecycleRecord } from './lifecycle/record';
import type { Who } from './qualify';
import type { Referral } from './referral';

/** gift_card (default) or discount_code (for shops without the gift-card scopes): fixed per referral at begin. */
export const REWARD_TYPES = ['gift_card', 'discount_code'] as const;
export type RewardType = (typeof REWARD_TYPES)[number];

export type Role = 'referrer' | 'redeemer';
export const ROLES: readonly Role[] = ['referrer', 'redeemer'];

export type LedgerStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'REJECTED' | ParkedStatus;

/**
 * The reward lifecycle's states (lib/domain/lifecycle/): waiting for a time, for an operator, or
 * cancelled/voided; waiting for the redeemer's qualifying event (AWAITING), or not qualified by its
 * deadline (NOT_QUALIFIED, final): lib/domain/qualify.ts.
 */
export type ParkedStatus = 'HELD' | 'REVIEW' | 'REVOKED' | 'AWAITING' | 'NOT_QUALIFIED';

/** Whether the program rules let this referral earn rewards: decided once, never re-evaluated. */
export type Decision = 'ACCEPTED' | 'REJECTED';

/**
 * Per role (`referrerCardId`, `redeemerCardId`, ...). `<role>CardId`, `<role>CardAt`: the reward and
 * when it was recorded; `<role>ExpiresOn`: the YYYY-MM-DD it was issued with, absent when it never
 * expires. `<role>TakenSeenAt`, `<role>TakenSeenCode`: when Shopify first said that code was taken
 * and a complete look-up found only strangers' rewards, for a code our earlier sends may have created
 * (a lost answer): the code is replaced only once that sighting is older than the confirmation
 * window (lib/domain/rewards.ts).
 */
type RoleFields = { [F in `${Role}${'CardId' | 'CardAt' | 'ExpiresOn' | 'TakenSeenAt' | 'TakenSeenCode'}`]?: string };

/** One referral's progress. Flat attributes so each step is a single SET, readable in the console. */
export interface LedgerRecord extends LifecycleFields, RoleFields {
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
  | { outcome: 'acquired' | 'completed' | 'rejected'; record: LedgerRecord }
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

export type FinalStatus = Extract<LedgerStatus, 'COMPLETED' | 'REJECTED'>;

/** Stands for the adapter's clock in a Change: the time of the write, as ISO text or epoch ms. */
export const NOW_ISO = Object.freeze({ clock: 'iso' as const });
export const NOW_MS = Object.freeze({ clock: 'ms' as const });

/**
 * One write to a referral's record, named by the domain step it records (lib/domain/steps.ts) and built
 * from named parts: ONE conditional write (LedgerPort.write, LedgerPort.move) that always sets `updatedAt`.
 */
export interface Change {
  /** The domain step (`recordCard`, `decide`, `approve`, ...): its name in errors and traces. */
  step: string;
  set?: Record<string, unknown>;
  /** Written only where the record has none yet (a repeat keeps the first). */
  setIfAbsent?: Record<string, unknown>;
  remove?: string[];
  add?: Record<string, number>;
  /** Further conditions: each attribute equals its value. */
  expect?: Record<string, unknown>;
  /** Further conditions: each attribute exists. */
  present?: string[];
  /** Further conditions: each attribute (epoch ms) is absent or older than its value in ms. */
  olderThan?: Record<string, number>;
  /** Frees the worker's lease in the same write (parked, finished, released). */
  freeLease?: boolean;
}

/** The lease fields: `freeLease` removes them. */
export const LEASE = ['leaseOwner', 'leaseExpiresAt'];

/** What a Change does to a record, its conditions aside (the in-memory ledgers: the dry run's rehearsal, the tests' twin). */
export function applyChange(record: LedgerRecord, change: Change, now: number): LedgerRecord {
  const iso = new Date(now).toISOString();
  const stamp = (value: unknown) => (value === NOW_ISO ? iso : value === NOW_MS ? now : value);
  const next: Record<string, unknown> = { ...record };
  for (const [key, value] of Object.entries(change.set ?? {})) next[key] = stamp(value);
  for (const [key, value] of Object.entries(change.setIfAbsent ?? {})) next[key] ??= stamp(value);
  for (const [key, value] of Object.entries(change.add ?? {})) next[key] = Number(next[key] ?? 0) + value;
  for (const key of [...(change.remove ?? []), ...(change.freeLease ? LEASE : [])]) delete next[key];
  next.updatedAt = iso;
  return next as unknown as LedgerRecord;
}

/**
 * The write `begin` makes, its conditions aside: the lease is this attempt's, and the people, the
 * reward and the codes are the ones an earlier attempt fixed, else this one's.
 */
export function beginChange(referral: Referral, input: BeginInput): Change {
  return {
    step: 'begin',
    set: { status: 'IN_PROGRESS', eventId: referral.eventId, leaseOwner: input.owner, leaseExpiresAt: input.leaseUntil },
    setIfAbsent: {
      createdAt: NOW_ISO,
      referrerEmail: referral.referrerEmail,
      redeemerEmail: referral.redeemerEmail,
      customerEmail: referral.customerEmail,
      distinctId: posthogDistinctId(referral),
      rewardType: input.rewardType,
      rewardAmount: input.rewardAmount,
      referrerCode: input.codes.referrer,
      redeemerCode: input.codes.redeemer,
      customerioEventId: input.customerioEventId,
    },
    add: { attempts: 1 },
  };
}

/** What `begin` makes of a record taking the referral up, its conditions aside (the in-memory ledgers). */
export function applyBegin(existing: LedgerRecord | undefined, referral: Referral, input: BeginInput, now: number): LedgerRecord {
  return applyChange({ ...existing, pk: `referral#${referral.eventId}` } as LedgerRecord, beginChange(referral, input), now);
}

/** Statuses `begin` and `fail` never take up: final, or parked until the lifecycle moves them (HELD apart: see closedOutcome). */
export const CLOSED: readonly LedgerStatus[] = ['COMPLETED', 'REJECTED', 'REVIEW', 'REVOKED', 'AWAITING', 'NOT_QUALIFIED'];

/**
 * `begin`'s answer for a record it may not take up, its lease aside: final (`completed`, `rejected`),
 * or `parked` (CLOSED, or HELD before its `releaseAt` in epoch ms: taking it up after is its
 * release); undefined when it is open.
 */
export function closedOutcome(record: LedgerRecord, now: number): BeginResult | undefined {
  const held = record.status === 'HELD' && !(Number(record.releaseAt) <= now);
  if (!held && !CLOSED.includes(record.status)) return undefined;
  const outcome = record.status === 'COMPLETED' ? 'completed' : record.status === 'REJECTED' ? 'rejected' : 'parked';
  return { outcome, record } as BeginResult;
}

/**
 * What is counted once per referral: a redeemer's one claim, a referrer's slots (at most `cap`), a
 * budget period's cents (at most the limit given), each exact under racing referrals and retries.
 */
export type Counter =
  | { kind: 'redeemer'; person: string }
  | { kind: 'referrer'; person: string }
  | { kind: 'budget'; period: string; cents: number }
  /**
   * Which referral a person key (personKeys, lib/domain/qualify.ts: PostHog person id, distinct id,
   * email) points at: one holder, as a redeemer's, taken when the referral waits for qualification.
   */
  | { kind: 'person'; person: string };

/**
 * A person's latest qualifying event, as heard under one of their keys (lib/domain/qualify.ts), with
 * who it was about as it named them: the referral checks it is its redeemer.
 */
export interface QualifyingFact extends Who {
  eventId: string;
  /** Epoch ms the event happened (PostHog's timestamp). */
  occurredAt: number;
}

/**
 * The sparse `lifecycle` index, read by the releaser and `review list` only: apart from the
 * ledger so the worker, which never reads it, carries no Query and its role grants none.
 */
export interface LifecycleIndex {
  /** Referrals waiting in `queue` (`held` until, or in `review` since, `lifecycleAt` ≤ `until`), oldest first. */
  waiting(queue: LifecycleQueue, until?: number, limit?: number): Promise<LifecycleRecord[]>;
}

/**
 * A referral's record, written in one conditional write per state change, and the counters the
 * rules and guards count on. Domain operations (record a card, approve, claim a redeemer) are
 * small functions over these in lib/domain/steps.ts.
 */
export interface LedgerPort {
  /** Creates the record or takes it up (new, or open and free: see the adapter), or reports why not. */
  begin(referral: Referral, input: BeginInput): Promise<BeginResult>;
  /** A write fenced on `owner`'s lease (and `change`'s conditions): LeaseLostError otherwise. */
  write(eventId: string, owner: string, change: Change): Promise<LedgerRecord>;
  /** An operator's move: only from one of `from` (and `change`'s conditions); undefined when refused. */
  move(eventId: string, from: readonly LedgerStatus[], change: Change): Promise<LedgerRecord | undefined>;
  /** True if the failure was recorded, false if the record is not ours to fail (final, parked, or actively held). */
  fail(eventId: string, owner: string, reason: string, message: string): Promise<boolean>;
  get(eventId: string): Promise<LedgerRecord | undefined>;
  /**
   * Counts `eventId` once: true if it is counted now or was already; false when `limit` (a
   * referrer's cap, a budget's cents) refuses it, or when another referral holds the redeemer
   * (`takeOver`: a refused referral's leftover claim, taken over only if it is still that one's).
   */
  count(counter: Counter, eventId: string, options?: { limit?: number; takeOver?: string }): Promise<boolean>;
  /** Uncounts `eventId` only if it is counted: true when it was. */
  uncount(counter: Counter, eventId: string): Promise<boolean>;
  /** The referrals counted: the redeemer's holder, a referrer's slot holders. */
  holders(counter: Counter): Promise<string[]>;
  /** A budget period's total: exact whatever is in flight. */
  spent(period: string): Promise<{ cents: number; referrals: number }>;
  /**
   * The referrer's referrals first seen within `windowMs` up to this one's first sighting, this
   * one included, counted up to `cap`; a retry gets the first answer.
   */
  velocity(person: string, eventId: string, windowMs: number, cap: number): Promise<number>;
  /**
   * Notes a qualifying event under one of its person keys: kept when it happened later than the one
   * held (one small item per key, never a list), until `expiresAt` (epoch s, DynamoDB's TTL).
   */
  noteQualifying(person: string, fact: QualifyingFact, expiresAt: number): Promise<void>;
  /** The qualifying event noted under a person key, read consistently (one just noted is seen). */
  qualifying(person: string): Promise<QualifyingFact | undefined>;
  /** `person-event#<uuid>`: the person event was handled (the catch-up queues only those without it), until `expiresAt` (epoch s). */
  markPersonEvent(eventId: string, role: 'qualify' | 'revoke', expiresAt: number): Promise<void>;
  /** Whether `person-event#<uuid>` is there (read consistently): the event was handled, until its mark expires. */
  personEventMarked(eventId: string): Promise<boolean>;
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
