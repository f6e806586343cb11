import { normalise } from './identity';
import { MAX_SIGNATURE_LENGTH } from './vouch';

/**
 * What ingest puts on the queue and the worker fulfils: the referral, already validated and
 * normalised, so the worker never re-reads PostHog's shape. `v` lets the format change
 * without stranding messages already in the queue or DLQ.
 */
export interface Referral {
  v: 1;
  eventId: string;
  eventName: string;
  referrerEmail: string;
  redeemerEmail: string;
  /**
   * Customer.io identifier, the person both codes are mailed to: always the redeemer's email, the
   * person the program rules judged, so the rules' verdict and the mail concern one person. Kept
   * as its own field so a worker of the previous release, reading messages queued by this one,
   * still mails the redeemer.
   */
  customerEmail: string;
  /**
   * The PostHog person's email when PostHog sent one. Never mailed; the rules refuse the referral
   * as a self-referral when it is the referrer's (the referrer captured the redemption as
   * themselves). Optional, so `v: 1` messages queued before it existed stay readable.
   */
  personEmail?: string;
  /**
   * The PostHog person the event was captured for (`person.id` in the webhook): the strongest of
   * the redeemer's keys a qualifying or refund event is matched by (lib/domain/qualify.ts).
   */
  personId?: string;
  distinctId?: string;
  occurredAt?: string;
  /**
   * The referrer's code, trimmed and lowercased, when the event names one (`referral_code`). Carried
   * and signed over. The worker pays the code's owner (lib/domain/referral-codes.ts): `referrerEmail`
   * is empty when the event named only the code, and overridden by the owner when it named both.
   */
  referralCode?: string;
  /**
   * The app backend's `referral_signature` (lib/domain/vouch.ts): what tells a referral the app
   * produced from an event anyone with PostHog's public project key could capture. Optional so
   * messages queued before it existed still parse (and are refused as unsigned where it is required).
   */
  referralSignature?: string;
  /** The code owner's PostHog distinct id, set by the worker when it resolves the code; never queued. */
  referrerDistinctId?: string;
}

/** The longest PostHog person id carried (theirs are UUIDs: 36 characters). */
export const MAX_PERSON_ID_LENGTH = 64;

/** The longest referral code carried: far past any code a person types, short enough to bound the message. */
export const MAX_REFERRAL_CODE_LENGTH = 64;

/** zod's default email pattern; ingest checks PostHog's emails with it too, so both sides agree. */
export const EMAIL_PATTERN = /^(?:[A-Za-z0-9_'+-]+\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$/;

/** Any 8-4-4-4-12 hex id, as PostHog's event uuids are (zod's `guid`). */
export const EVENT_ID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const isEmail = (value: unknown): value is string => typeof value === 'string' && EMAIL_PATTERN.test(value);
export const isOptional = (value: unknown, max = Infinity): value is string | undefined =>
  value === undefined || (typeof value === 'string' && value.length <= max);

/** The JSON object in a queue message body, or undefined when the body is not one. */
export function readMessage(body: string): Record<string, unknown> | undefined {
  try {
    const message: unknown = JSON.parse(body);
    return message !== null && typeof message === 'object' ? (message as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The referral in a queue message body, or undefined when it is not one this worker understands
 * (another version, a hand-edited redrive). Checked by hand rather than with zod: the worker
 * reads nothing else, and zod would cost its bundle ~30 KB (docs/PERFORMANCE.md).
 * Unknown keys are dropped.
 */
export function parseReferral(body: string): Referral | undefined {
  const message = readMessage(body);
  if (!message) return undefined;
  const {
    v,
    eventId,
    eventName,
    referrerEmail,
    redeemerEmail,
    customerEmail,
    personEmail,
    personId,
    distinctId,
    occurredAt,
    referralCode,
    referralSignature,
  } = message;
  if (v !== 1 || typeof eventId !== 'string' || !EVENT_ID_PATTERN.test(eventId) || typeof eventName !== 'string') return undefined;
  // A referral that names its referrer by code may name no referrer email: the worker resolves the code.
  const referrerOk = isEmail(referrerEmail) || (typeof referralCode === 'string' && referralCode !== '' && referrerEmail === '');
  if (!referrerOk || !isEmail(redeemerEmail) || !isEmail(customerEmail)) return undefined;
  if (personEmail !== undefined && !isEmail(personEmail)) return undefined;
  if (!isOptional(distinctId) || !isOptional(occurredAt) || !isOptional(personId, MAX_PERSON_ID_LENGTH)) return undefined;
  if (!isOptional(referralCode, MAX_REFERRAL_CODE_LENGTH) || !isOptional(referralSignature, MAX_SIGNATURE_LENGTH)) return undefined;
  // A message without personEmail (queued by the previous release) may carry the PostHog person's
  // email as its customerEmail: read as the person (personEmail), never as where the codes go.
  const person = personEmail ?? (normaliseEmail(customerEmail) === normaliseEmail(redeemerEmail) ? undefined : customerEmail);
  const referral: Referral = {
    v,
    eventId,
    eventName,
    referrerEmail: referrerEmail as string,
    redeemerEmail,
    customerEmail: redeemerEmail,
    personEmail: person,
    personId,
    distinctId,
    occurredAt,
    referralCode,
    referralSignature,
  };
  // An optional field the message lacks stays absent, not a key holding undefined.
  return Object.fromEntries(Object.entries(referral).filter(([, value]) => value !== undefined)) as Referral;
}

/** Emails are compared and stored trimmed and lowercased: Shopify, Customer.io and people treat them so. */
export const normaliseEmail = normalise;
