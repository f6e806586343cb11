/**
 * The releaser: every run (an EventBridge schedule in AWS, every 2 s under `npm start`) reads the
 * sparse `lifecycle` index for HELD referrals whose release time has come and puts each one's
 * original queue message back on the work queue. The normal worker then takes the record up
 * (the ledger's `begin` admits a HELD record only once `releaseAt` has passed) and pays it under
 * the same lease, steps and codes as any referral: the releaser itself never pays anything, so a
 * releaser run twice, late, or crashed halfway can at worst send a duplicate message, which the
 * ledger acknowledges. It also expires referrals past their qualification deadline, and finishes
 * the revokes refunds requested of paid referrals (REVOKE_PAID): the one Shopify call it makes is
 * a deactivation, which the worker neither carries nor may send. Its ledger access is writes only
 * (UpdateItem, with the record returned): the releaser's role reads nothing but the index.
 */
import type { Referral } from '../referral';
import type { LedgerPort, LifecycleIndex } from '../ledger-port';
import { claimReleaseSend, expire, notQualifiedDone, revokeDone } from '../steps';
import type { LifecycleRecord } from './record';
import { deactivateRequested, revokedFollowUps, type RewardDeactivator } from './revoke';
import { releaseClaims } from '../claims';
import type { OutcomeTracker } from '../notify-ports';
import { announce, type Announcer } from '../announce';
import { captureRecord, parkedReferral, QUALIFY_GRACE_MS, releasePersonKeys } from '../qualify';
import { errorMessage } from '../errors';

export interface ReleaserDeps extends Announcer {
  ledger: LedgerPort;
  /** The sparse index of the referrals waiting (lib/adapters/dynamodb/lifecycle-index.ts). */
  index: LifecycleIndex;
  /** Puts a referral on the work queue (lib/adapters/sqs/queue.ts, wired in lib/infra/wiring.ts), as reconcile's deps do. */
  enqueue(referral: Referral): Promise<unknown>;
  now?: () => number;
  /** A message sent less than this ago is not sent again (default 15 min: well past a busy queue's wait). */
  resendAfterMs?: number;
  /** Captures `not_qualified` (POSTHOG_API_KEY); absent: not captured. */
  posthog?: OutcomeTracker;
  /**
   * Deactivates a paid referral's rewards when a refund asked for its revoke (REVOKE_PAID): the
   * Shopify client on the worker's credentials (lib/infra/wiring.ts). Absent: such revokes fail
   * and are counted each run until it is given.
   */
  shopify?: RewardDeactivator;
}

export interface ReleaseRun {
  /** Messages put on the queue in this run. */
  released: number;
  /** Due, but sent recently by another run. */
  alreadySent: number;
  /** Referrals in REVIEW for more than a day (the ReviewWaitingOverADay metric and its alarm). */
  reviewOverADay: number;
  /** Referrals waiting for their qualifying event (ReferralsAwaitingQualification). */
  awaiting: number;
  /** Referrals found past their deadline and made NOT_QUALIFIED in this run (ReferralsNotQualified). */
  notQualified: number;
  /** NOT_QUALIFIED referrals whose follow-ups (claims, capture, announcement) failed in this run: the next run tries again. */
  expiryFollowUpsFailed: number;
  /** Paid referrals a refund asked to revoke whose rewards were deactivated and which became REVOKED in this run. */
  revoked: number;
  /** Those that failed in this run (Shopify, PostHog, Customer.io, credentials): the next run tries again. */
  revokesFailed: { referral: string; error: string }[];
}

export const DAY_MS = 86_400_000;
const DEFAULT_RESEND_AFTER_MS = 15 * 60_000;

export async function releaseDue(deps: ReleaserDeps): Promise<ReleaseRun> {
  const startedAt = Date.now();
  const now = (deps.now ?? Date.now)();
  const due = await deps.index.waiting('held', now);
  let released = 0;
  let alreadySent = 0;
  for (const record of due) {
    // IN_PROGRESS: taken up but not yet out of the index (a crash before markReleased); its own message may be lost, so send again.
    if (record.status !== 'HELD' && record.status !== 'IN_PROGRESS') continue;
    if (await sendRelease(deps, record)) released++;
    else alreadySent++;
  }
  const reviewOverADay = (await deps.index.waiting('review', now - DAY_MS)).length;
  const { expired: notQualified, failed: expiryFollowUpsFailed } = await expireDue(deps, now);
  // Up to the index read's 1,000: the alarm on qualifying events stopping needs only "some wait".
  const awaiting = (await deps.index.waiting('awaiting')).filter((record) => record.status === 'AWAITING').length;
  // Last: a Shopify outage here must not hold up the releases above.
  const { revoked, failed: revokesFailed } = await revokeRequested(deps, startedAt + REVOKE_BUDGET_MS);
  return { released, alreadySent, reviewOverADay, awaiting, notQualified, expiryFollowUpsFailed, revoked, revokesFailed };
}

/**
 * Revoked and expired per run at most, so a wave stays well inside the releaser's 60 s; the rest,
 * oldest first, go on the next minute. A revoke costs two Shopify mutations through a pacer that
 * takes a small part of the shop's budget (lib/infra/wiring.ts); an expiry a few sequential writes
 * and two calls out.
 */
const REVOKE_PER_RUN = 10;
const EXPIRE_PER_RUN = 200;
/**
 * No revoke is begun after this much of a run (real time, from its start): Shopify slow or down,
 * each call may take its 10 s timeout, and the run must end inside the releaser's 60 s with its metrics flushed.
 */
const REVOKE_BUDGET_MS = 30_000;

/**
 * Paid referrals a refund asked to revoke (REVOKE_PAID; parked in the `revoking` queue by the
 * request's own write): made REVOKED (deactivateRequested), `revoked` captured, `cancelled`
 * announced, and only then out of the index, so a run that failed or crashed anywhere in between
 * finishes on the next. A failure is counted and left for the next run, never thrown: the other
 * revokes go on.
 */
async function revokeRequested(deps: ReleaserDeps, stopAt: number): Promise<{ revoked: number; failed: ReleaseRun['revokesFailed'] }> {
  let revoked = 0;
  const failed: ReleaseRun['revokesFailed'] = [];
  for (const found of await deps.index.waiting('revoking', undefined, REVOKE_PER_RUN)) {
    if (Date.now() > stopAt) break;
    try {
      let record: LifecycleRecord | undefined = found;
      if (record.status === 'COMPLETED' && record.revokeRequestedAt) {
        if (!deps.shopify) throw new Error('no Shopify client to deactivate its rewards (the worker secret is not readable)');
        // Refused: `ops revoke` (or a run beside this one) finished it first; its follow-ups are the next run's.
        record = await deactivateRequested(deps.ledger, deps.shopify, record);
        if (!record) continue;
        revoked++;
      }
      if (record.status !== 'REVOKED') continue;
      const reason = record.revokeReason ?? 'refund';
      // The same uuid as `ops revoke`'s capture of this referral (outcome and referral): one event in PostHog.
      await revokedFollowUps(deps.ledger, deps.posthog, record, { outcome: 'revoked', reason });
      await announce(deps, undefined, record, 'cancelled', { reason });
      await revokeDone(deps.ledger, record.eventId);
    } catch (error) {
      failed.push({ referral: found.eventId, error: errorMessage(error) });
    }
  }
  return { revoked, failed };
}

/**
 * Waiting referrals past their deadline (plus QUALIFY_GRACE_MS, for an event that happened in time
 * and is still on its way): each moved to NOT_QUALIFIED in one conditional write from AWAITING (a
 * qualification or a cancel that came first wins, and this run leaves it), then its claims given
 * back, `not_qualified` captured and announced, and only then out of the index: a run that crashed
 * in between finds it there again and finishes, each follow-up being a no-op the second time.
 */
async function expireDue(deps: ReleaserDeps, now: number): Promise<{ expired: number; failed: number }> {
  let expired = 0;
  let failed = 0;
  for (const found of await deps.index.waiting('awaiting', now - QUALIFY_GRACE_MS, EXPIRE_PER_RUN)) {
    let record: LifecycleRecord | undefined = found;
    if (record.status === 'AWAITING') {
      record = await expire(deps.ledger, found.eventId, Number(found.qualifyBy));
      if (record) expired++;
    }
    if (record?.status !== 'NOT_QUALIFIED') continue;
    try {
      await releaseClaims(deps.ledger, record);
      const referral = parkedReferral(record);
      if (referral) await releasePersonKeys(deps.ledger, referral, record.eventId);
      await captureRecord(deps.posthog, record, 'not_qualified', undefined, { reason: 'no_qualifying_event' });
      await announce(deps, undefined, record, 'not_qualified', { reason: 'no_qualifying_event' });
      await notQualifiedDone(deps.ledger, record.eventId);
    } catch {
      // Left in the index: the next run finishes it (each follow-up is a no-op the second time). One
      // referral's outage (PostHog, Customer.io) must not stop the others, nor the held releases.
      failed++;
    }
  }
  return { expired, failed };
}

/** Claims and sends one due referral's message (also what `review approve` does right away); false if sent recently. */
export async function sendRelease(
  deps: Pick<ReleaserDeps, 'ledger' | 'enqueue' | 'resendAfterMs'>,
  record: LifecycleRecord,
): Promise<boolean> {
  const referral = parkedReferral(record);
  if (!referral) return false;
  if (!(await claimReleaseSend(deps.ledger, record.eventId, deps.resendAfterMs ?? DEFAULT_RESEND_AFTER_MS))) return false;
  await deps.enqueue(referral);
  return true;
}
