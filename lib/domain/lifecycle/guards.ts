/**
 * Guards that send a referral to REVIEW instead of paying it (they never reject on their own):
 * a disposable email, a referrer referring too fast, or a budget that this referral would
 * exceed. Evaluated once per referral, after the program rules accepted it; each check is a
 * claim that admits the same referral again, so a retry reaches the same verdict.
 */
import { PermanentError } from '../errors';
import { canonicalEmail } from '../identity';
import type { Referral } from '../referral';
import { isDisposableEmail } from './disposable';
import type { LedgerPort, LedgerRecord } from '../ledger-port';
import type { LifecycleDeps } from './hold';
import { budgetCentsOf, budgetPeriods, type ReviewReason } from './record';

/** The guards' counters: budgets counted once per referral, the referrer's velocity. */
export type GuardCounters = Pick<LedgerPort, 'count' | 'uncount' | 'velocity'>;

export interface GuardDeps extends LifecycleDeps {
  /** Both rewards of the referral, in cents. */
  cents: number;
}

/** One side of a referral as PostHog may know them: their email, and a distinct id when we have one. */
export interface PersonRef {
  email: string;
  distinctId?: string;
}

/**
 * How many `$device_id` and `$ip` values the referrer's and the redeemer's PostHog persons both
 * used since `since` (ISO). Throws RetryableError when PostHog cannot answer now: the guard never
 * passes a referral it could not check.
 */
export interface SharedSignalsPort {
  shared(query: { referrer: PersonRef; redeemer: PersonRef; since: string }): Promise<{ devices: number; ips: number }>;
}

/**
 * The reasons to review, empty to pay. Budget comes last and is reserved only when nothing else
 * holds the referral back: a suspicious referral does not use up budget while it waits.
 */
export async function reviewReasons(referral: Referral, createdAt: string, deps: GuardDeps): Promise<ReviewReason[]> {
  const { config, ledger } = deps;
  const reasons: ReviewReason[] = [];
  if (config.reviewDisposable && (isDisposableEmail(referral.referrerEmail) || isDisposableEmail(referral.redeemerEmail)))
    reasons.push('disposable_email');
  if (config.velocity) {
    const recent = await ledger.velocity(
      canonicalEmail(referral.referrerEmail),
      referral.eventId,
      config.velocity.windowMs,
      config.velocity.count + 1,
    );
    if (recent > config.velocity.count) reasons.push('velocity');
  }
  // Asked only when nothing else holds the referral back: one Query API request per referral at
  // most, inside PostHog's hourly budget, and an operator reviewing it anyway sees both persons.
  if (reasons.length === 0) reasons.push(...(await sharedSignalReasons(referral, createdAt, deps)));
  if (reasons.length === 0 && !(await reserveWithinBudgets(referral.eventId, createdAt, deps))) reasons.push('budget');
  return reasons;
}

/**
 * `shared_device` / `shared_ip` when the two people look like one in PostHog. A failed question is
 * thrown (RetryableError: SQS redelivers), never read as "no": with the guard on, nothing is paid
 * unchecked.
 */
async function sharedSignalReasons(referral: Referral, createdAt: string, deps: GuardDeps): Promise<ReviewReason[]> {
  const shared = deps.config.sharedSignals;
  if (!shared) return [];
  if (!deps.sharedSignals)
    throw new PermanentError(
      'shared_signals_unwired',
      'REVIEW_SHARED_DEVICE / REVIEW_SHARED_IP are on, and no PostHog query client was wired',
    );
  const since = new Date(Date.parse(createdAt) - shared.lookbackMs).toISOString();
  const found = await deps.sharedSignals.shared({
    referrer: { email: referral.referrerEmail, ...(referral.referrerDistinctId ? { distinctId: referral.referrerDistinctId } : {}) },
    redeemer: { email: referral.redeemerEmail, ...(referral.distinctId ? { distinctId: referral.distinctId } : {}) },
    since,
  });
  const reasons: ReviewReason[] = [];
  if (shared.device && found.devices > 0) reasons.push('shared_device');
  if (shared.ip && found.ips > 0) reasons.push('shared_ip');
  return reasons;
}

/** Day first, then month; a refusal by the month gives the day back, so nothing stays counted for a referral sent to review. */
async function reserveWithinBudgets(eventId: string, createdAt: string, deps: GuardDeps): Promise<boolean> {
  const { config, ledger, cents } = deps;
  const { day, month } = budgetPeriods(createdAt);
  const budget = (period: string) => ({ kind: 'budget' as const, period, cents });
  if (config.dailyBudgetCents !== undefined && !(await ledger.count(budget(day), eventId, { limit: config.dailyBudgetCents })))
    return false;
  if (config.monthlyBudgetCents !== undefined && !(await ledger.count(budget(month), eventId, { limit: config.monthlyBudgetCents }))) {
    if (config.dailyBudgetCents !== undefined) await ledger.uncount(budget(day), eventId);
    return false;
  }
  return true;
}

/** The referral's share in its day and its month, in that order. */
const shares = (record: LedgerRecord) =>
  Object.values(budgetPeriods(record.createdAt)).map((period) => ({ kind: 'budget' as const, period, cents: budgetCentsOf(record) }));

/**
 * An operator approved: counted in its day and month whatever the budgets say (the operator's
 * decision), once, by the worker that takes it up to pay it. Counted in both even where no budget
 * is set: a budget turned on later in the period then sees it, and a counter no budget reads
 * changes nothing.
 */
export async function countApproved(ledger: GuardCounters, record: LedgerRecord): Promise<void> {
  for (const share of shares(record)) await ledger.count(share, record.eventId);
}

/** Rejected or cancelled before payout: the referral's share goes back, exactly once (a no-op where none was counted). */
export async function returnShare(ledger: GuardCounters, record: LedgerRecord): Promise<void> {
  for (const share of shares(record)) await ledger.uncount(share, record.eventId);
}
