/**
 * The releaser: every run (an EventBridge schedule in AWS, every 2 s under `npm start`) reads the
 * sparse `lifecycle` index for HELD referrals whose release time has come and puts each one's
 * original queue message back on the work queue. The normal worker then takes the record up
 * (the ledger's `begin` admits a HELD record only once `releaseAt` has passed) and pays it under
 * the same lease, steps and codes as any referral: the releaser itself never pays anything, so a
 * releaser run twice, late, or crashed halfway can at worst send a duplicate message, which the
 * ledger acknowledges.
 */
import { parseReferral, type Referral } from '../referral';
import type { LedgerPort, LifecycleIndex } from '../ledger-port';
import { claimReleaseSend, expire, notQualifiedDone } from '../steps';
import type { LifecycleRecord } from './record';
import { releaseClaims } from '../claims';
import type { OutcomeTracker } from '../notify-ports';
import { announce, captureRecord, parkedReferral, QUALIFY_GRACE_MS, releasePersonKeys } from '../qualify';
import type { StatusSender } from '../status';

export interface ReleaserDeps {
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
  /** Tells the people a referral did not qualify (CUSTOMERIO_STATUS_EVENT); absent: not told. */
  status?: StatusSender;
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
}

export const DAY_MS = 86_400_000;
const DEFAULT_RESEND_AFTER_MS = 15 * 60_000;

export async function releaseDue(deps: ReleaserDeps): Promise<ReleaseRun> {
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
  return { released, alreadySent, reviewOverADay, awaiting, notQualified, expiryFollowUpsFailed };
}

/**
 * Waiting referrals past their deadline (plus QUALIFY_GRACE_MS, for an event that happened in time
 * and is still on its way): each moved to NOT_QUALIFIED in one conditional write from AWAITING (a
 * qualification or a cancel that came first wins, and this run leaves it), then its claims given
 * back, `not_qualified` captured and announced, and only then out of the index: a run that crashed
 * in between finds it there again and finishes, each follow-up being a no-op the second time.
 * Ledger writes only (UpdateItem): the releaser's role reads nothing but the index.
 */
/**
 * Expired per run at most: each takes a few sequential writes (and two calls out), so a mass
 * expiry stays well inside the releaser's 60 s; the rest, oldest first, go on the next minute.
 */
const EXPIRE_PER_RUN = 200;

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
      await notQualifiedFollowUps(deps, record);
    } catch {
      // Left in the index: the next run finishes it (each follow-up is a no-op the second time). One
      // referral's outage (PostHog, Customer.io) must not stop the others, nor the held releases.
      failed++;
    }
  }
  return { expired, failed };
}

async function notQualifiedFollowUps(deps: ReleaserDeps, record: LifecycleRecord): Promise<void> {
  await releaseClaims(deps.ledger, record);
  const referral = parkedReferral(record);
  if (referral) await releasePersonKeys(deps.ledger, referral, record.eventId);
  await captureRecord(deps.posthog, record, 'not_qualified', undefined, { reason: 'no_qualifying_event' });
  await announce(deps.status, undefined, record, 'not_qualified', { reason: 'no_qualifying_event' });
  await notQualifiedDone(deps.ledger, record.eventId);
}

/** Claims and sends one due referral's message (also what `review approve` does right away); false if sent recently. */
export async function sendRelease(
  deps: Pick<ReleaserDeps, 'ledger' | 'enqueue' | 'resendAfterMs'>,
  record: LifecycleRecord,
): Promise<boolean> {
  const referral = record.parkedMessage ? parseReferral(record.parkedMessage) : undefined;
  if (!referral) return false;
  if (!(await claimReleaseSend(deps.ledger, record.eventId, deps.resendAfterMs ?? DEFAULT_RESEND_AFTER_MS))) return false;
  await deps.enqueue(referral);
  return true;
}
