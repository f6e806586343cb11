import { EVENT_ID_PATTERN, isOptional, readMessage } from './referral';

/**
 * A later event of a referral's redeemer that moves the referral on: QUALIFY_EVENT qualifies a
 * referral waiting for it, REVOKE_EVENT cancels one not yet paid (or, with REVOKE_PAID, revokes a
 * paid one). Ingest and the reconciler's catch-up put it on the same queue as a referral; the
 * worker tells the two apart by `kind`. Like a Referral, only bounded fields travel.
 */
export interface PersonEvent {
  v: 1;
  kind: 'person-event';
  /** Which setting the event's name matched. */
  role: 'qualify' | 'revoke';
  /** PostHog's event uuid: a repeat of the same event does nothing more. */
  eventId: string;
  eventName: string;
  /** When it happened (PostHog's `timestamp`), ISO: an event from before the referral never qualifies it. */
  occurredAt: string;
  /** The PostHog person (`person.id` in the webhook body): who the event is about. */
  personId?: string;
  /** Fallbacks when the person id is absent, in this order. */
  distinctId?: string;
  email?: string;
  /** The app backend's signature over the event (lib/domain/vouch.ts), like a referral's. */
  signature?: string;
}

/** The longest distinct id, email and signature a queued person event carries (ingest cuts or refuses longer ones). */
const MAX_FIELD_LENGTH = 400;

/**
 * The person event in a queue message body, or undefined when it is not one this worker
 * understands. Checked by hand, as parseReferral is (the worker carries no zod). Unknown keys are dropped.
 */
export function parsePersonEvent(body: string): PersonEvent | undefined {
  const message = readMessage(body);
  if (message?.kind !== 'person-event') return undefined;
  const { v, role, eventId, eventName, occurredAt, personId, distinctId, email, signature } = message;
  if (v !== 1 || (role !== 'qualify' && role !== 'revoke')) return undefined;
  // Lower case, as ingest queues it.
  if (typeof eventId !== 'string' || !EVENT_ID_PATTERN.test(eventId) || eventId !== eventId.toLowerCase()) return undefined;
  if (typeof eventName !== 'string' || eventName === '' || typeof occurredAt !== 'string' || !Number.isFinite(Date.parse(occurredAt)))
    return undefined;
  if (![personId, distinctId, email, signature].every((value) => isOptional(value, MAX_FIELD_LENGTH))) return undefined;
  const event = { v, kind: 'person-event', role, eventId, eventName, occurredAt, personId, distinctId, email, signature };
  // An optional field that is absent or empty stays absent; the required ones are non-empty by now.
  return Object.fromEntries(Object.entries(event).filter(([, value]) => value)) as unknown as PersonEvent;
}
