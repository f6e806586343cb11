/**
 * Plays the app's backend: adds `referral_signature` (lib/domain/vouch.ts) to a PostHog webhook
 * body or captured event, as the app signs each referral it produces. Used by `npm start`'s
 * samples, the test harness, the soak and the bench, so every referral they send is vouched for
 * exactly as a real one would be; a test of a forged event sends one without.
 *
 * The fields signed are read back with ingest's own parser (lib/inbound/posthog-webhook.ts), so
 * what is signed is what the worker will check: the redeemer from the person where the property
 * is left out, the code trimmed and lowercased, the emails normalised.
 */
import { DEFAULTS } from '../lib/infra/settings';
import { parseWebhook, REFERRAL_SIGNATURE_PROPERTY, type PayloadOptions } from '../lib/inbound/posthog-webhook';
import { signPersonEvent, signReferral } from '../lib/domain/vouch';

export const DEFAULT_PAYLOAD_OPTIONS: PayloadOptions = {
  referralEvent: DEFAULTS.REFERRAL_EVENT,
  referrerEmailProperty: DEFAULTS.REFERRER_EMAIL_PROPERTY,
  redeemerEmailProperty: DEFAULTS.REDEEMER_EMAIL_PROPERTY,
};

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * A copy of `body` (PostHog's default `{event, person}` template, or a bare event) whose event
 * properties carry the referral's signature under `key`. Returned unchanged when it is not a
 * referral ingest would queue (the test is about a refusal), or when it already names a
 * `referral_signature`, even a null one (the test chose what to send).
 */
export function signWebhookBody<T>(body: T, key: string, options: PayloadOptions = DEFAULT_PAYLOAD_OPTIONS): T {
  if (!isObject(body)) return body;
  const event = isObject(body.event) ? body.event : body;
  if (!isObject(event.properties) || REFERRAL_SIGNATURE_PROPERTY in event.properties) return body;
  let parsed: ReturnType<typeof parseWebhook>;
  try {
    parsed = parseWebhook(JSON.stringify(body), options);
  } catch {
    return body;
  }
  if (parsed.kind !== 'referral') return body;
  const properties = { ...event.properties, [REFERRAL_SIGNATURE_PROPERTY]: signReferral(key, parsed.referral) };
  return (event === body ? { ...body, properties } : { ...body, event: { ...event, properties } }) as T;
}

/**
 * The properties of an event the app captures straight into PostHog (no webhook: the reconciler's
 * path), with the signature added. `personEmail` stands in for the redeemer as PostHog's person would.
 */
export function signEventProperties(
  eventName: string,
  properties: Json,
  key: string,
  personEmail?: string,
  options: PayloadOptions = DEFAULT_PAYLOAD_OPTIONS,
): Json {
  const body = {
    event: { uuid: '00000000-0000-4000-8000-000000000000', event: eventName, properties },
    ...(personEmail ? { person: { properties: { email: personEmail } } } : {}),
  };
  return signWebhookBody(body, key, options).event.properties;
}

/** The properties of a redeemer's qualifying or refund event, with `referral_signature` added as the app's backend signs it. */
export function signPersonEventProperties(eventName: string, distinctId: string, eventId: string, properties: Json, key: string): Json {
  return { ...properties, [REFERRAL_SIGNATURE_PROPERTY]: signPersonEvent(key, { eventName, distinctId, eventId }) };
}
