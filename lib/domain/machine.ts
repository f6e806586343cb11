/**
 * A referral's life as one state machine (docs/ARCHITECTURE.md draws it). The state is DERIVED
 * from the ledger record (stateOf), never stored beside it; what is stored is the verdict, once,
 * in the write that decides it (decide, lib/domain/steps.ts), and the facts of each step (a
 * card's id, Customer.io's and PostHog's times), each one conditional write (steps.ts says how).
 *
 * Effects around the writes (lib/domain/rewards.ts, lifecycle/*.ts): a hold is captured in PostHog
 * before the write that parks it; a refusal gives its claims back after its verdict is stored; a
 * taken-up approval is counted against its budget periods before it is released; a reviewer's
 * rejection or a cancel returns the referral's budget share after its write.
 *
 * A new state is a member of State (StateName follows), a row in TRANSITIONS, a line in stateOf
 * reading the fact that marks it, and, if the worker may stop there, a Verdict kind (decide stores
 * it), as AWAITING_QUALIFICATION (stored AWAITING, the `await` verdict) and NOT_QUALIFIED are.
 */
import type { LedgerRecord, LedgerStatus } from './ledger-port';
import type { ReviewReason } from './lifecycle/record';

/** What the rules and the lifecycle's guards decided: reached once per referral, stored once (decide, lib/domain/steps.ts). */
export type Verdict =
  | { kind: 'reject'; reason: string }
  | { kind: 'pay' }
  /** Parked until `until` (epoch ms); the releaser hands it back to the worker then. */
  | { kind: 'hold'; until: number }
  /** Parked for an operator; `holdUntil`: its acceptance plus REWARD_HOLD, the earliest an approval releases it. */
  | { kind: 'review'; reasons: ReviewReason[]; holdUntil: number }
  /** Accepted by the rules, parked until the redeemer's QUALIFY_EVENT or `until` (epoch ms), whichever comes first (lib/domain/qualify.ts). */
  | { kind: 'await'; until: number };

export type StateName = State['name'];

/** A verdict (decide stores it), or a move after one. */
export type Event = Verdict['kind'] | Move;
type Move = 'qualify' | 'expire' | 'finish' | 'take-up' | 'approve' | 'cancel' | 'revoke' | 'deactivated' | 'fail' | 'redrive';

/** The machine: which event moves which state where; an operator's move is a write only from a state that has it (fromStates). */
export const TRANSITIONS: Record<StateName, Partial<Record<Event, StateName>>> = {
  RECEIVED: { reject: 'REJECTED', pay: 'PAYING', hold: 'HELD', review: 'REVIEW', await: 'AWAITING_QUALIFICATION', fail: 'FAILED' },
  // Qualified: back to RECEIVED with the rules' half of the verdict stored, so the lifecycle's half (hold, review, budget) is reached then.
  AWAITING_QUALIFICATION: { qualify: 'RECEIVED', expire: 'NOT_QUALIFIED', cancel: 'REVOKED' },
  NOT_QUALIFIED: {},
  REJECTED: { finish: 'REJECTED', fail: 'FAILED' },
  HELD: { 'take-up': 'PAYING', hold: 'HELD', cancel: 'REVOKED', fail: 'FAILED' },
  REVIEW: { approve: 'HELD', reject: 'REJECTED', cancel: 'REVOKED' },
  PAYING: { finish: 'COMPLETED', fail: 'FAILED' },
  COMPLETED: { revoke: 'REVOKING' },
  REVOKING: { revoke: 'REVOKING', deactivated: 'REVOKED' },
  REVOKED: {},
  FAILED: { redrive: 'RECEIVED' },
};

/**
 * The state a record is in, derived from what it stores. `accepted`: the rules' half of a verdict
 * stored by the previous release without the lifecycle's half (it wrote them apart); the worker
 * reaches the lifecycle's verdict for it and stores that.
 */
export type State =
  | { name: 'RECEIVED'; accepted: boolean }
  /** Waiting for the redeemer's qualifying event until `until` (epoch ms: `qualifyBy`). */
  | { name: 'AWAITING_QUALIFICATION'; until: number }
  /** No qualifying event by the deadline: final. */
  | { name: 'NOT_QUALIFIED' }
  /** `final` once the referral has ended; before that its claims are given back and the outcome captured. */
  | { name: 'REJECTED'; reason: string; final: boolean }
  /** `takenUp`: begun again by a worker (due), not yet out of the lifecycle index. */
  | { name: 'HELD'; until: number; takenUp: boolean }
  | { name: 'REVIEW'; reasons: ReviewReason[] }
  | { name: 'PAYING' }
  | { name: 'COMPLETED' | 'REVOKING' }
  | { name: 'REVOKED'; beforePayout: boolean }
  | { name: 'FAILED'; reason: string };

export function stateOf(record: LedgerRecord): State {
  const { status, decision } = record;
  const until = Number(record.releaseAt);
  if (status === 'AWAITING') return { name: 'AWAITING_QUALIFICATION', until: Number(record.qualifyBy) };
  if (status === 'NOT_QUALIFIED') return { name: status };
  if (status === 'COMPLETED') return { name: record.revokeRequestedAt ? 'REVOKING' : 'COMPLETED' };
  if (status === 'REVOKED') return { name: status, beforePayout: record.revokedBeforePayout === true };
  if (status === 'REVIEW') return { name: status, reasons: record.reviewReasons ?? [] };
  if (status === 'FAILED') return { name: status, reason: record.failureReason ?? 'unknown' };
  if (status === 'HELD') return { name: status, until, takenUp: false };
  if (status === 'REJECTED' || decision === 'REJECTED')
    return { name: 'REJECTED', reason: record.rejectionReason ?? 'unknown', final: status === 'REJECTED' };
  // IN_PROGRESS, accepted or not yet decided: what the stored verdict and the steps done say.
  if (decision !== 'ACCEPTED') return { name: 'RECEIVED', accepted: false };
  if (record.parkedAt && !record.releasedAt) return { name: 'HELD', until, takenUp: true };
  // A reward already created, or a release, means the pay verdict was reached: never park a half-paid referral.
  if (record.gatePassedAt || record.releasedAt || record.referrerCardId || record.redeemerCardId || record.customerioAt)
    return { name: 'PAYING' };
  return { name: 'RECEIVED', accepted: true };
}

/** The states that are statuses of their own, and the status each is stored as. */
const STORED: Partial<Record<StateName, LedgerStatus>> = {
  AWAITING_QUALIFICATION: 'AWAITING',
  HELD: 'HELD',
  REVIEW: 'REVIEW',
  COMPLETED: 'COMPLETED',
  REVOKED: 'REVOKED',
};

/** The stored statuses an operator's (or a person event's) `event` may move a record from: the states the table moves on it that are statuses of their own. */
export function fromStates(event: Event): LedgerStatus[] {
  return Object.entries(STORED).flatMap(([name, status]) => (TRANSITIONS[name as StateName][event] ? [status] : []));
}

/**
 * Which write ends a referral that is rejected or paid: PostHog's capture when one is still due,
 * else the step before it (Customer.io's, for a paid one) or, when that too was done by an earlier
 * attempt, a write of its own. Chosen here only, so every path ends the same way.
 */
export function lastStep(record: LedgerRecord, posthogDue: boolean): 'posthog' | 'customerio' | 'own' {
  if (posthogDue) return 'posthog';
  return record.decision === 'ACCEPTED' && !record.customerioAt ? 'customerio' : 'own';
}
