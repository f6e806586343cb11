import { createHmac, timingSafeEqual } from 'node:crypto';
import { normalise } from './identity';
import type { PersonEvent } from './person-event';
import type { Referral } from './referral';

/**
 * Referrals vouched for by the app's backend. PostHog's project key (`phc_...`) is public: it is in
 * every page that loads posthog-js, and anyone holding it can capture a `referral redeemed` event.
 * The webhook's bearer token and signature prove only that a request came from PostHog, not that
 * the app produced the event, so the event itself carries `referral_signature`: an HMAC-SHA256 of
 * the referral under a key only the app's backend and this service's worker hold
 * (REFERRAL_SIGNING_KEY). The worker pays nothing for a referral whose signature does not verify.
 *
 * The signed message is `v1`, the event name, the referrer (its `referral_code` when the event
 * names one, else its referrer email) and the redeemer's email (the `redeemer_email` property, or
 * the PostHog person's email where that is absent or blank), each trimmed and lowercased, joined
 * by `\n`. The signature is that HMAC in base64url without padding (43 characters). node:crypto
 * only, so the worker bundle grows by nothing.
 */

/** The first line of every signed message: a new format gets a new version, never a new meaning for this one. */
export const SIGNATURE_VERSION = 'v1';
/** REFERRAL_SIGNING_KEY's least length, in bytes: SHA-256's output size (RFC 2104 §3 recommends a key no shorter). */
export const MIN_SIGNING_KEY_BYTES = 32;
/** The longest `referral_signature` carried from the webhook to the worker; a genuine one has 43 characters. */
export const MAX_SIGNATURE_LENGTH = 128;

/** What a signature vouches for, as ingest queues it. */
export type VouchedReferral = Pick<Referral, 'eventName' | 'referrerEmail' | 'redeemerEmail' | 'referralCode'>;

export type VouchVerdict = 'vouched' | 'unsigned' | 'bad_signature';

/** `v1` and the fields, each trimmed and lowercased, joined by `\n`. */
const signingMessage = (...fields: string[]): string => [SIGNATURE_VERSION, ...fields].map(normalise).join('\n');

/** The text the app's backend signs for this referral. */
export function referralSigningMessage(referral: VouchedReferral): string {
  const code = referral.referralCode === undefined ? '' : normalise(referral.referralCode);
  return signingMessage(referral.eventName, code || referral.referrerEmail, referral.redeemerEmail);
}

/** The `referral_signature` the app's backend attaches to the event (and the harnesses, playing the app). */
export function signReferral(key: string, referral: VouchedReferral): string {
  return hmac(key, referralSigningMessage(referral));
}

/**
 * Whether `signature` is this referral's, under `key` or, during a rotation, `previousKey`
 * (REFERRAL_SIGNING_KEY_PREVIOUS: referrals the app signed before the switch are still in flight),
 * in constant time (verdictOf).
 */
export function verifyReferral(key: string, referral: VouchedReferral, signature: string | undefined, previousKey?: string): VouchVerdict {
  return verdictOf(signature, (candidate) => signReferral(candidate, referral), key, previousKey);
}

/** What a person event's signature vouches for: the event, its person and its uuid. */
export type VouchedPersonEvent = Pick<PersonEvent, 'eventName' | 'distinctId' | 'eventId'>;

/**
 * The `referral_signature` the app's backend attaches to a person event (QUALIFY_EVENT,
 * REVOKE_EVENT; and the harnesses, playing the app). It signs `v1`, the event name, its distinct
 * id and its uuid, each trimmed and lowercased as a referral's fields are, joined by `\n`. The
 * uuid is the one the backend sets when it captures (posthog-node's `capture` takes `uuid`:
 * posthog.com/docs/references/posthog-node-5.40.0/types/EventMessage), so a signature vouches for
 * one event only: it cannot be replayed onto another capture, and a repeat of the same event is the same event.
 */
export function signPersonEvent(key: string, event: VouchedPersonEvent): string {
  return hmac(key, signingMessage(event.eventName, event.distinctId ?? '', event.eventId));
}

/** Whether `signature` is this person event's, under `key` or `previousKey`: as verifyReferral, in constant time. */
export function verifyPersonEvent(
  key: string,
  event: VouchedPersonEvent,
  signature: string | undefined,
  previousKey?: string,
): VouchVerdict {
  // Without a distinct id there is no person the app vouched for.
  if (signature && !event.distinctId) return 'bad_signature';
  return verdictOf(signature, (candidate) => signPersonEvent(candidate, event), key, previousKey);
}

/** HMAC-SHA256 of `message` under `key`, in base64url without padding (43 characters). */
function hmac(key: string, message: string): string {
  return createHmac('sha256', key).update(message, 'utf8').digest('base64url');
}

/**
 * Whether `signature` (none: unsigned) is `sign(key)` or `sign(previousKey)`, compared in constant
 * time as text: only the exact unpadded base64url form is accepted (Node's base64 decoder would also
 * take padding and stray characters), and a length that differs is refused before comparing (the
 * length is public). Both keys are always compared, so the time taken does not tell which key, if
 * either, matched.
 */
function verdictOf(
  signature: string | undefined,
  sign: (key: string) => string,
  key: string,
  previousKey: string | undefined,
): VouchVerdict {
  if (!signature) return 'unsigned';
  const given = Buffer.from(signature, 'utf8');
  const matches = (candidate: string): boolean => {
    const expected = Buffer.from(sign(candidate), 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  const current = matches(key);
  const previous = previousKey === undefined ? false : matches(previousKey);
  return current || previous ? 'vouched' : 'bad_signature';
}
