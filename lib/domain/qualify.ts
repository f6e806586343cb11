/**
 * Pay on value: a referral the program rules accepted waits (AWAITING_QUALIFICATION, lib/domain/machine.ts)
 * until its redeemer's QUALIFY_EVENT, then continues on today's path (hold, review guards, budget,
 * payment); a REVOKE_EVENT of the redeemer cancels one not yet paid. Both events reach the worker
 * as a PersonEvent (lib/domain/person-event.ts), from the webhook or the reconciler's catch-up.
 *
 * Order is not guaranteed, so each side writes, then reads what the other writes, both strongly
 * consistent:
 *   the referral  takes its person keys (the `person` counter: one holder per key), stores its
 *                 `await` verdict, THEN reads the qualifying facts noted under its keys;
 *   the event     notes its qualifying fact under each of its keys, THEN reads the keys' holders
 *                 and the holder's record.
 * Whichever side reads second sees the other's write, so an event that happened after the referral
 * was captured qualifies it whichever arrived first. Either side qualifies it with one conditional
 * move from AWAITING (steps.ts `qualify`), so only one of them, once, and never one the releaser
 * expired (`expire`, a move from AWAITING too).
 *
 * Only the redeemer's own event counts (sameRedeemer): the PostHog person id when both name one,
 * else the distinct id when both name one, else the event's email against the redeemer's.
 */
import { announce } from './announce';
import { canonicalEmail } from './identity';
import { errorMessage, PermanentError, RetryableError } from './errors';
import type { LedgerPort, LedgerRecord, QualifyingFact } from './ledger-port';
import { captureOutcome } from './lifecycle/capture';
import type { LifecycleRecord } from './lifecycle/record';
import { rewardOf } from './lifecycle/review';
import { revokedFollowUps } from './lifecycle/revoke';
import type { OutcomeDetails, OutcomeTracker } from './notify-ports';
import type { PersonEvent } from './person-event';
import { parseReferral, type Referral } from './referral';
import type { FulfilContext, FulfilDeps, FulfilResult } from './rewards';
import type { ReferralSignatures } from './rules';
import { cancel, qualify, release, requestRevoke } from './steps';
import { verifyPersonEvent } from './vouch';

/** QUALIFY_EVENT, QUALIFY_WITHIN, QUALIFY_WHERE, REVOKE_EVENT, REVOKE_PAID (lib/infra/config-qualify.ts). */
export interface QualificationRules {
  /** Absent: pay on redemption, as before. */
  qualifyEvent?: string;
  /** How long after its capture a referral waits for it. */
  withinMs: number;
  /** A HogQL boolean PostHog applies (the destination's filter, the catch-up's WHERE); never evaluated here. */
  where?: string;
  /** Absent: refunds change nothing. */
  revokeEvent?: string;
  /** A refund also revokes a paid referral (both rewards deactivated). */
  revokePaid: boolean;
}

/**
 * How long past its deadline the releaser leaves a waiting referral: an event that happened before
 * the deadline may still be on its way, by PostHog's webhook retries or the catch-up, which looks
 * only at events older than RECONCILE_MIN_AGE (5 min) every RECONCILE_INTERVAL (15 min). An hour
 * covers both with room; the event's own time, not its arrival, is what is judged.
 */
export const QUALIFY_GRACE_MS = 60 * 60_000;

/** How long the ledger keeps a person event's marks past its deadline: a week, for late catch-ups and redrives. */
const KEEP_PAST_WINDOW_MS = 7 * 86_400_000;

/** Who a referral's redeemer or a person event is, as PostHog named them. */
export interface Who {
  personId?: string;
  distinctId?: string;
  email?: string;
}

/** A person's keys, strongest first: PostHog person id, distinct id, canonical email. */
export function personKeys(who: Who): string[] {
  return [
    ...(who.personId ? [`id:${who.personId}`] : []),
    ...(who.distinctId ? [`distinct:${who.distinctId}`] : []),
    ...(who.email ? [`email:${canonicalEmail(who.email)}`] : []),
  ];
}

const redeemerKeys = (referral: Referral): string[] =>
  personKeys({ personId: referral.personId, distinctId: referral.distinctId, email: referral.redeemerEmail });

/** Whether `who` is the referral's redeemer: the strongest identity both name decides. */
export function sameRedeemer(referral: Pick<Referral, 'personId' | 'distinctId' | 'redeemerEmail'>, who: Who): boolean {
  if (referral.personId && who.personId) return referral.personId === who.personId;
  if (referral.distinctId && who.distinctId) return referral.distinctId === who.distinctId;
  return who.email !== undefined && canonicalEmail(who.email) === canonicalEmail(referral.redeemerEmail);
}

/**
 * When the referral was captured: PostHog's timestamp, never later than the worker first saw it
 * (a timestamp the client set in the future must not stretch the window), the first attempt's
 * time when it has none.
 */
export function capturedAt(referral: Pick<Referral, 'occurredAt'>, record: Pick<LedgerRecord, 'createdAt'>): number {
  const created = Date.parse(record.createdAt);
  const occurred = referral.occurredAt ? Date.parse(referral.occurredAt) : Number.NaN;
  return Number.isFinite(occurred) ? Math.min(occurred, created) : created;
}

/** Whether the referral waits: QUALIFY_EVENT is on and no qualifying event has moved it on yet. */
export function waitsForQualification(rules: QualificationRules | undefined, record: LedgerRecord): boolean {
  return Boolean(rules?.qualifyEvent) && !record.qualifiedAt;
}

/** Whether either event is on: then an accepted referral takes its person keys, so the events can find it. */
export const personEventsOn = (rules: QualificationRules | undefined): boolean => Boolean(rules?.qualifyEvent || rules?.revokeEvent);

/**
 * The referral's person keys, each pointing at it: taken while the rules' claims hold the redeemer,
 * so at most one accepted referral of this person is live. A key held by another referral that
 * no longer waits (paid, refused, expired) is taken over; one held by another referral still
 * waiting (the same PostHog person redeeming under another email) is left to it, and this
 * referral is found by its other keys.
 */
export async function takePersonKeys(ledger: LedgerPort, referral: Referral, eventId: string): Promise<void> {
  for (const person of redeemerKeys(referral)) {
    const counter = { kind: 'person' as const, person };
    if (await ledger.count(counter, eventId)) continue;
    const [holder] = await ledger.holders(counter);
    if (holder === undefined) await ledger.count(counter, eventId);
    else if ((await ledger.get(holder))?.status !== 'AWAITING') await ledger.count(counter, eventId, { takeOver: holder });
  }
}

/** Gives back the referral's person keys (only those it still holds). */
export async function releasePersonKeys(ledger: Pick<LedgerPort, 'uncount'>, referral: Referral, eventId: string): Promise<void> {
  for (const person of redeemerKeys(referral)) await ledger.uncount({ kind: 'person', person }, eventId);
}

/** The queue message a parked referral keeps, as the worker reads it. */
export const parkedReferral = (record: LedgerRecord): Referral | undefined =>
  record.parkedMessage ? parseReferral(record.parkedMessage) : undefined;

/**
 * The referral side, after its `await` write (and on a retry that finds it waiting): the qualifying
 * facts under its keys, read after that write; the first that is its redeemer's and in its window
 * qualifies it. True when it is qualified (now, or by an event meanwhile) and unfinished.
 */
export async function qualifyFromFacts(ledger: LedgerPort, referral: Referral, record: LedgerRecord): Promise<boolean> {
  for (const person of redeemerKeys(referral)) {
    const fact = await ledger.qualifying(person);
    const now = fact && sameRedeemer(referral, fact) ? await qualifyBy(ledger, referral, record, fact) : undefined;
    if (now) return qualifiedUnfinished(now);
  }
  return false;
}

/**
 * Qualifies the waiting referral by one event, if that happened after its capture and by its deadline
 * and qualifies no other referral: the record after the move, or as it is now when the move was
 * refused (expired, cancelled or qualified by another event meanwhile); undefined when the event
 * does not count. One qualifying event qualifies one referral: the same PostHog person may hold two
 * accepted referrals (the redeemer claim is per email), and a later one that takes over the person
 * keys of a paid one would otherwise read the event that paid it. A single-holder item per event
 * uuid (`person#event:<uuid>`, one per qualified referral); a retry of the same referral holds it already.
 */
async function qualifyBy(
  ledger: LedgerPort,
  referral: Referral,
  record: LedgerRecord,
  event: { eventId: string; occurredAt: number },
): Promise<LedgerRecord | undefined> {
  const { eventId } = record;
  if (event.occurredAt < capturedAt(referral, record) || event.occurredAt > Number(record.qualifyBy)) return undefined;
  if (!(await ledger.count({ kind: 'person', person: `event:${event.eventId.toLowerCase()}` }, eventId))) return undefined;
  return (await qualify(ledger, eventId, event.eventId, Number(record.qualifyBy))) ?? (await ledger.get(eventId)) ?? record;
}

/** Qualified, not yet decided again or paid: its qualifier (or a retry of it) continues it. */
const qualifiedUnfinished = (record: LedgerRecord): boolean =>
  Boolean(record.qualifiedAt) && (record.status === 'IN_PROGRESS' || record.status === 'FAILED');

/** Nothing for a person event to do to its referral (already moved on, outside its window). */
const nothing = (record: LedgerRecord): PersonEventResult => ({ outcome: 'nothing', referral: record.eventId, status: record.status });

/** A capture about a referral from its record (the releaser's and the person event's, which hold no queued referral). */
export async function captureRecord(
  posthog: OutcomeTracker | undefined,
  record: LifecycleRecord,
  outcome: 'qualified' | 'not_qualified' | 'cancelled',
  rewardType: string | undefined,
  extra?: OutcomeDetails,
): Promise<void> {
  if (posthog) await captureOutcome(posthog, outcome, record, rewardOf(record, rewardType), extra);
}

export type PersonEventResult =
  /** Its setting is off (turned off after it was queued): nothing to do. */
  | { outcome: 'off' }
  | { outcome: 'unvouched'; reason: 'unsigned' | 'bad_signature' | 'replayed' }
  /** No referral of this person (most people): acknowledged. */
  | { outcome: 'no-referral' }
  /** A referral of this person, and nothing for this event to do to it (already moved on, outside its window). */
  | { outcome: 'nothing'; referral: string; status: string }
  | { outcome: 'qualified'; referral: string; result: FulfilResult }
  | { outcome: 'cancelled'; referral: string }
  /** REVOKE_PAID: the revoke is recorded (REVOKING) and parked for the releaser, which deactivates both rewards. */
  | { outcome: 'revoke-requested'; referral: string };

/**
 * How far a UUIDv7's own time may be from the event's timestamp: PostHog corrects a client's
 * clock skew by shifting `timestamp` (sent_at), by seconds or minutes, never by a day.
 */
const UUID_TIME_TOLERANCE_MS = 86_400_000;

/**
 * Why a person event's signature does not vouch for it, or undefined when it does or signatures are
 * off. The signature covers the uuid, not the timestamp: a vouched event sent again later under a new
 * timestamp would be judged as new once its `person-event#<uuid>` mark has expired. A UUIDv7
 * (RFC 9562 §5.7: the first 48 bits are Unix ms; PostHog's SDKs generate v7 event uuids,
 * `uuidv7` in @posthog/core) carries the time it was made under the signature, so such a replay
 * shows as `replayed`; a uuid of another version is judged by its mark alone (README "Pay on value").
 */
function personEventRefusal(
  event: PersonEvent,
  signatures: ReferralSignatures | undefined,
): 'unsigned' | 'bad_signature' | 'replayed' | undefined {
  if (!signatures || signatures.mode === 'off') return undefined;
  const verdict = verifyPersonEvent(signatures.key, event, event.signature, signatures.previousKey);
  if (verdict !== 'vouched') return verdict;
  const hex = event.eventId.replace(/-/g, '');
  if (hex.length !== 32 || hex[12] !== '7') return undefined;
  const occurred = Date.parse(event.occurredAt);
  return Number.isFinite(occurred) && Math.abs(occurred - Number.parseInt(hex.slice(0, 12), 16)) > UUID_TIME_TOLERANCE_MS
    ? 'replayed'
    : undefined;
}

/**
 * One person event, exactly once in effect however often it comes: vouched, its fact noted (a
 * qualifying one), its referral found and moved on by one conditional write, the referral then
 * continued in this invocation (qualified: fulfilReferral, as a referral message would), and
 * `person-event#<uuid>` written last, so the catch-up re-queues an event whose handling never finished.
 */
export async function handlePersonEvent(
  event: PersonEvent,
  deps: FulfilDeps,
  context: FulfilContext,
  fulfil: (referral: Referral, deps: FulfilDeps, context: FulfilContext) => Promise<FulfilResult>,
): Promise<PersonEventResult> {
  const rules = deps.qualification;
  const name = event.role === 'qualify' ? rules?.qualifyEvent : rules?.revokeEvent;
  if (!rules || name === undefined || name !== event.eventName) return { outcome: 'off' };
  const occurredAt = Date.parse(event.occurredAt);
  if (!Number.isFinite(occurredAt)) throw new PermanentError('invalid_message', `person event ${event.eventId} has no readable time`);
  const expiresAt = Math.ceil((occurredAt + rules.withinMs + KEEP_PAST_WINDOW_MS) / 1000);
  const { ledger } = deps;
  const refusal = personEventRefusal(event, deps.rules?.referralSignatures);
  if (refusal) {
    // Refused for good, as a referral with such a signature is (a rotation gives the stage the new
    // key before the app, docs/OPERATIONS.md): marked, so the catch-up stops queueing it every run.
    await ledger.markPersonEvent(event.eventId, event.role, expiresAt);
    return { outcome: 'unvouched', reason: refusal };
  }
  // Handled already (the mark is written last): a repeat, or a replay under a new timestamp (see
  // personEventRefusal), moves nothing; it may only continue a referral already qualified.
  const handled = await ledger.personEventMarked(event.eventId);

  if (event.role === 'qualify' && !handled) {
    const { eventId, personId, distinctId, email } = event;
    const fact: QualifyingFact = { eventId, occurredAt, personId, distinctId, email };
    // Noted before the referral is looked for: a referral that waits after our look reads it (see the header).
    for (const person of personKeys(event)) await ledger.noteQualifying(person, fact, expiresAt);
  }
  const found = await findReferral(ledger, event);
  const result = found
    ? event.role === 'qualify'
      ? await qualifyFound(found, event, handled ? undefined : occurredAt, deps, context, fulfil)
      : handled
        ? nothing(found.record)
        : await revokeFound(found, event, occurredAt, deps)
    : ({ outcome: 'no-referral' } as const);
  await ledger.markPersonEvent(event.eventId, event.role, expiresAt);
  return result;
}

interface Found {
  record: LifecycleRecord;
  /** The queued referral it keeps while parked; absent for one paid at once (then only a revoke has anything to do). */
  referral?: Referral;
}

/** The redeemer's referral: through its keys, strongest first; the holder must be this person (sameRedeemer). */
async function findReferral(ledger: LedgerPort, who: Who): Promise<Found | undefined> {
  for (const person of personKeys(who)) {
    const [holder] = await ledger.holders({ kind: 'person', person });
    if (holder === undefined) continue;
    const record = await ledger.get(holder);
    if (!record) continue;
    const referral = parkedReferral(record);
    // A key the two share is a match unless a stronger identity both name differs. A referral paid
    // at once keeps no message: its record's distinct id stands for it (an email shared with a
    // stranger's PostHog person must not reach it); a person id key matched is the person itself.
    const redeemer = referral ?? (person.startsWith('id:') ? undefined : { ...record, personId: undefined });
    if (redeemer && !sameRedeemer(redeemer, who)) continue;
    return { record, referral };
  }
  return undefined;
}

async function qualifyFound(
  found: Found,
  event: PersonEvent,
  /** Undefined for an event handled before: it moves nothing, and only continues a referral qualified already. */
  occurredAt: number | undefined,
  deps: FulfilDeps,
  context: FulfilContext,
  fulfil: (referral: Referral, deps: FulfilDeps, context: FulfilContext) => Promise<FulfilResult>,
): Promise<PersonEventResult> {
  const { ledger } = deps;
  let record = found.record;
  const referral = found.referral;
  if (!referral) return nothing(record);
  if (record.status === 'AWAITING') {
    const now = occurredAt === undefined ? undefined : await qualifyBy(ledger, referral, record, { eventId: event.eventId, occurredAt });
    if (!now) return nothing(record);
    record = now;
  }
  if (!qualifiedUnfinished(record)) return nothing(record);
  // Same referral, same outcome: the adapter's uuid makes a retried capture one event.
  await captureRecord(deps.posthog, record, 'qualified', deps.rewardType);
  try {
    return { outcome: 'qualified', referral: record.eventId, result: await fulfil(referral, deps, context) };
  } catch (error) {
    // The referral's own lease is freed (a retryable failure) so this event's next delivery, or a
    // duplicate of the referral, continues it; a permanent one is recorded on it, and this event
    // goes to the DLQ: its redrive continues the referral, as a referral's redrive would.
    const message = errorMessage(error);
    if (error instanceof PermanentError) await ledger.fail(record.eventId, context.owner, error.reason, message).catch(() => undefined);
    else await release(ledger, record.eventId, context.owner, message).catch(() => undefined);
    throw error;
  }
}

/**
 * A refund: a referral not yet paid (waiting, held, in review) is cancelled in one write from its
 * status, its budget share returned (none while it waits); with REVOKE_PAID a paid one's revoke is
 * recorded (REVOKING: no worker takes it up) and parked for the releaser to deactivate both rewards. Only a
 * refund that happened after the referral was captured counts: a late duplicate of an older
 * refund must not cancel a newer referral.
 */
async function revokeFound(found: Found, event: PersonEvent, occurredAt: number, deps: FulfilDeps): Promise<PersonEventResult> {
  const { ledger } = deps;
  const { eventId } = found.record;
  let record = found.record;
  if (occurredAt < capturedAt(found.referral ?? {}, record)) return nothing(record);
  if (record.status === 'AWAITING' || record.status === 'HELD' || record.status === 'REVIEW') {
    const cancelled = await cancel(ledger, eventId, event.eventName);
    record = cancelled ?? (await ledger.get(eventId)) ?? record;
    if (!cancelled && record.status !== 'REVOKED') {
      // Taken up meanwhile (its release time came, or it qualified): back once it is paid or parked again.
      throw new RetryableError(`referral ${eventId} is moving on right now; the refund is tried again`);
    }
  }
  if (record.status === 'IN_PROGRESS' || record.status === 'FAILED') {
    // Being decided or paid (or dead-lettered, to be redriven): judged once it settles (parked:
    // cancelled; paid: revoked with REVOKE_PAID), never acknowledged meanwhile and forgotten.
    throw new RetryableError(`referral ${eventId} is being decided or paid; the refund is tried again`);
  }
  if (record.status === 'REVOKED' && record.revokedBeforePayout) {
    const reason = record.revokeReason ?? event.eventName;
    // Resumable follow-ups, also on a repeat of this event.
    await revokedFollowUps(ledger, deps.posthog, record, {
      outcome: 'cancelled',
      reason,
      reward: (cancelled) => rewardOf(cancelled, deps.rewardType),
    });
    await announce(deps, undefined, record, 'cancelled', { reason });
    return { outcome: 'cancelled', referral: eventId };
  }
  if (record.status === 'COMPLETED' && deps.qualification!.revokePaid) {
    await requestRevoke(ledger, eventId, event.eventName, { park: true });
    return { outcome: 'revoke-requested', referral: eventId };
  }
  return nothing(record);
}
