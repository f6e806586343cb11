import * as z from 'zod/mini';
import { RejectedError } from '../domain/errors';
import { MAX_EMAIL_LENGTH, referralLimitProblem } from '../domain/limits';
import { EMAIL_PATTERN, EVENT_ID_PATTERN, MAX_REFERRAL_CODE_LENGTH, normaliseEmail, type Referral } from '../domain/referral';
import { MAX_PERSON_ID_LENGTH } from '../domain/referral';
import { MAX_SIGNATURE_LENGTH } from '../domain/vouch';
import type { PersonEvent } from '../domain/person-event';
import { jsonComplexityProblem } from './json-bounds';
import { MAX_DISTINCT_ID_LENGTH } from './referral-code-request';

export interface PayloadOptions {
  referralEvent: string;
  referrerEmailProperty: string;
  redeemerEmailProperty: string;
  /** QUALIFY_EVENT, REVOKE_EVENT: read as person events (lib/domain/person-event.ts); absent, ignored like any other event. */
  qualifyEvent?: string;
  revokeEvent?: string;
}

export type ParsedWebhook =
  | { kind: 'referral'; referral: Referral }
  | { kind: 'person-event'; event: PersonEvent }
  | { kind: 'ignored'; eventName: string; eventId?: string };

const emailSchema = z.pipe(z.string().check(z.trim(), z.maxLength(MAX_EMAIL_LENGTH)), z.email({ pattern: EMAIL_PATTERN }));
const recordSchema = z.record(z.string(), z.unknown());
// Every key optional: zod 4 treats a bare z.unknown() key as required, and a missing uuid
// must be reported as such (or ignored for another event), not as an unreadable body.
const eventSchema = z.object({
  uuid: z.optional(z.unknown()),
  event: z.optional(z.unknown()),
  distinct_id: z.optional(z.unknown()),
  properties: z.optional(z.unknown()),
  timestamp: z.optional(z.unknown()),
});

const unprocessable = (code: string, message: string) => new RejectedError(422, code, message);

/**
 * Longest distinct id and timestamp queued; longer ones are left out of the message (the referral
 * is still queued). A bound of our own: the body may be megabytes (a big PostHog person), but
 * the queue message must stay a few hundred bytes, far under SQS's message size limit.
 */
const MAX_TIMESTAMP_LENGTH = 64;
const boundedString = (value: unknown, max: number): string | undefined =>
  typeof value === 'string' && value.length <= max ? value : undefined;
/** A property the app left out: absent, null, or a string of nothing but whitespace. */
const isBlank = (value: unknown): boolean => value === undefined || value === null || (typeof value === 'string' && value.trim() === '');

/**
 * The event properties the app's backend vouches with (lib/domain/vouch.ts). Fixed names, not
 * settings: the app's signing code and the worker's check must agree on them.
 */
export const REFERRAL_CODE_PROPERTY = 'referral_code';
export const REFERRAL_SIGNATURE_PROPERTY = 'referral_signature';

/**
 * Reads PostHog's HTTP Webhook destination body. The default template sends
 * `{"event": {...}, "person": {...}}` (person may be absent); users who template their own
 * body often send the bare event. Anything else is refused with a reason a person can act on,
 * and so is a referral that a later step's limits would refuse (lib/domain/limits.ts): that is found
 * out here, before anything is queued, not after the rewards exist. Everything ingest checks is
 * reached through this one function, so other readers of PostHog events (a reconciler) get the
 * same verdicts by calling it.
 */
export function parseWebhook(rawBody: string, options: PayloadOptions): ParsedWebhook {
  // Before JSON.parse: what parsing would cost is bounded by the body's shape, not only its size (json-bounds.ts).
  const complexity = jsonComplexityProblem(rawBody);
  if (complexity) throw new RejectedError(413, complexity.code, complexity.message);
  let body: unknown;
  try {
    body = JSON.parse(rawBody);
  } catch (error) {
    throw new RejectedError(400, 'invalid_json', 'body is not valid JSON', { cause: error });
  }
  const root = recordSchema.safeParse(body);
  if (!root.success) throw new RejectedError(400, 'invalid_body', 'body must be a JSON object');

  const wrapped = root.data.event !== null && typeof root.data.event === 'object';
  const eventObject = wrapped ? root.data.event : root.data;
  const event = eventSchema.safeParse(eventObject);
  if (!event.success || typeof event.data.event !== 'string' || event.data.event === '') {
    throw unprocessable(
      'missing_event_name',
      'expected PostHog\'s default body {"event": {...}, "person": {...}} or a bare event with "event" (its name) and "uuid"',
    );
  }
  const { uuid, event: eventName, distinct_id: distinctId, timestamp } = event.data;
  const eventId = typeof uuid === 'string' && EVENT_ID_PATTERN.test(uuid) ? uuid : undefined;

  // The referral event and the person events are ours; anything else is acknowledged so PostHog does not retry it.
  const role = eventName === options.referralEvent ? undefined : personEventRole(eventName, options);
  if (eventName !== options.referralEvent && role === undefined) {
    return { kind: 'ignored', eventName, eventId };
  }
  if (uuid === undefined || uuid === null || uuid === '') {
    throw unprocessable('missing_event_uuid', 'event.uuid is required: it is what makes a reward happen exactly once');
  }
  if (eventId === undefined) throw unprocessable('invalid_event_uuid', 'event.uuid must be a UUID');
  const person = wrapped ? root.data.person : undefined;
  if (role !== undefined) return { kind: 'person-event', event: readPersonEvent(role, eventId, eventName, event.data, person) };

  const props = readProperties(event.data.properties);
  const personEmail = readPersonEmail(person);
  const personId = readPersonId(person);

  // A referral that names the referrer by `referral_code` needs no referrer email: the worker pays
  // the code's owner (lib/domain/referral-codes.ts), and an email beside the code is ignored there.
  // Without a code, the email is the referrer, as before codes existed.
  const referralCode = readReferralCode(props[REFERRAL_CODE_PROPERTY]);
  const referrerProperty = props[options.referrerEmailProperty];
  const referrerEmail =
    referralCode !== undefined && (isBlank(referrerProperty) || !emailSchema.safeParse(referrerProperty).success)
      ? ''
      : readEmail(referrerProperty, options.referrerEmailProperty, 'referrer');
  // The redeemer is usually the person the event was captured for, so their profile email stands
  // in, for an empty or blank property as much as for a missing one: an app that sends
  // `redeemer_email: ""` for a signed-in person means "the person", and refusing it would lose the referral.
  const redeemerProperty = props[options.redeemerEmailProperty];
  const redeemerEmail = readEmail(isBlank(redeemerProperty) ? personEmail : redeemerProperty, options.redeemerEmailProperty, 'redeemer');
  const referralSignature = readSignature(props[REFERRAL_SIGNATURE_PROPERTY]);

  const problem = referralLimitProblem({ referrerEmail, redeemerEmail });
  if (problem) throw unprocessable(problem.code, problem.message);

  return {
    kind: 'referral',
    referral: {
      v: 1,
      eventId: eventId.toLowerCase(),
      eventName,
      referrerEmail,
      redeemerEmail,
      // The codes go to the person the rules judge, the redeemer; the PostHog person is carried
      // only so the rules can refuse a referrer who redeemed as themselves: mailing the person
      // instead would let one person collect every reward under invented redeemer emails.
      customerEmail: redeemerEmail,
      ...(personEmail === undefined ? {} : { personEmail }),
      ...(personId === undefined ? {} : { personId }),
      distinctId: boundedString(distinctId, MAX_DISTINCT_ID_LENGTH),
      occurredAt: boundedString(timestamp, MAX_TIMESTAMP_LENGTH),
      ...(referralCode === undefined ? {} : { referralCode }),
      ...(referralSignature === undefined ? {} : { referralSignature }),
    },
  };
}

function personEventRole(eventName: string, options: PayloadOptions): PersonEvent['role'] | undefined {
  if (options.qualifyEvent !== undefined && eventName === options.qualifyEvent) return 'qualify';
  if (options.revokeEvent !== undefined && eventName === options.revokeEvent) return 'revoke';
  return undefined;
}

/**
 * A redeemer's qualifying or refund event: who it is about (the default template's `person.id`,
 * the distinct id, `person.properties.email`), when it happened (required: an event from before
 * the referral never qualifies it) and the app's `referral_signature` (lib/domain/vouch.ts
 * `signPersonEvent`). Only these few bounded fields are queued, whatever the body's size.
 */
function readPersonEvent(
  role: PersonEvent['role'],
  eventId: string,
  eventName: string,
  event: { distinct_id?: unknown; properties?: unknown; timestamp?: unknown },
  person: unknown,
): PersonEvent {
  const occurredAt = boundedString(event.timestamp, MAX_TIMESTAMP_LENGTH);
  if (occurredAt === undefined || !Number.isFinite(Date.parse(occurredAt))) {
    throw unprocessable(
      'invalid_event_timestamp',
      'event.timestamp is required for this event: when it happened decides what it qualifies',
    );
  }
  const props = readProperties(event.properties);
  const personId = readPersonId(person);
  const email = readPersonEmail(person);
  const distinct = boundedString(event.distinct_id, MAX_DISTINCT_ID_LENGTH);
  const signature = readSignature(props[REFERRAL_SIGNATURE_PROPERTY]);
  return {
    v: 1,
    kind: 'person-event',
    role,
    eventId: eventId.toLowerCase(),
    eventName,
    occurredAt: new Date(Date.parse(occurredAt)).toISOString(),
    ...(personId === undefined ? {} : { personId }),
    ...(distinct === undefined || distinct === '' ? {} : { distinctId: distinct }),
    ...(email === undefined ? {} : { email }),
    ...(signature === undefined ? {} : { signature }),
  };
}

function readProperties(properties: unknown): Record<string, unknown> {
  const props = recordSchema.safeParse(properties ?? {});
  if (!props.success) throw unprocessable('invalid_properties', 'event.properties must be an object');
  return props.data;
}

/** The default template's `person.id` (a UUID in PostHog), when it is a short string. */
function readPersonId(person: unknown): string | undefined {
  const id = z.object({ id: z.string() }).safeParse(person);
  return id.success && id.data.id !== '' ? boundedString(id.data.id, MAX_PERSON_ID_LENGTH) : undefined;
}

/**
 * The referral code, trimmed and lowercased (as it is signed), or undefined when the event names
 * none. A number is read as its digits (an app may capture a numeric code as a number). One that is
 * too long or holds control characters is refused: it is signed line by line, so a line break
 * inside it would blur where the referrer ends and the redeemer begins.
 */
function readReferralCode(value: unknown): string | undefined {
  if (isBlank(value)) return undefined;
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string') throw unprocessable('invalid_referral_code', `event.properties.${REFERRAL_CODE_PROPERTY} must be a string`);
  const code = text.trim().toLowerCase();
  // eslint-disable-next-line no-control-regex -- the code is one line of the signed message (above)
  if (code.length > MAX_REFERRAL_CODE_LENGTH || /[\u0000-\u001f\u007f]/.test(code)) {
    throw unprocessable(
      'invalid_referral_code',
      `event.properties.${REFERRAL_CODE_PROPERTY} must be at most ${MAX_REFERRAL_CODE_LENGTH} characters, without control characters`,
    );
  }
  return code;
}

/**
 * The signature as sent, trimmed, and cut to MAX_SIGNATURE_LENGTH so the queue message stays small
 * (a genuine one is 43 characters, so a cut one can only fail the worker's check). Ingest does not
 * check it: only the worker holds the key. A value that is not a string is no signature.
 */
function readSignature(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  return value.trim().slice(0, MAX_SIGNATURE_LENGTH);
}

function readEmail(value: unknown, property: string, role: string): string {
  if (value === undefined || value === null || value === '') {
    throw unprocessable(`missing_${role}_email`, `event.properties.${property} (the ${role}'s email) is required`);
  }
  const email = emailSchema.safeParse(value);
  if (!email.success) {
    throw unprocessable(`invalid_${role}_email`, `event.properties.${property} is not a valid email address`);
  }
  return normaliseEmail(email.data);
}

function readPersonEmail(person: unknown): string | undefined {
  const email = z.object({ properties: z.object({ email: emailSchema }) }).safeParse(person);
  return email.success ? normaliseEmail(email.data.properties.email) : undefined;
}
