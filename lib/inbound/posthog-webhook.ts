import * as z from 'zod/mini';
import { RejectedError } from '../domain/errors';
import { MAX_EMAIL_LENGTH, referralLimitProblem } from '../domain/limits';
import { EMAIL_PATTERN, EVENT_ID_PATTERN, normaliseEmail, type Referral } from '../domain/referral';
import { jsonComplexityProblem } from './json-bounds';

export interface PayloadOptions {
  referralEvent: string;
  referrerEmailProperty: string;
  redeemerEmailProperty: string;
}

export type ParsedWebhook =
  | { kind: 'referral'; referral: Referral }
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
const MAX_DISTINCT_ID_LENGTH = 400;
const MAX_TIMESTAMP_LENGTH = 64;
const boundedString = (value: unknown, max: number): string | undefined =>
  typeof value === 'string' && value.length <= max ? value : undefined;

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
  const { uuid, event: eventName, distinct_id: distinctId, properties, timestamp } = event.data;
  const eventId = typeof uuid === 'string' && EVENT_ID_PATTERN.test(uuid) ? uuid : undefined;

  // Only the referral event is ours; anything else is acknowledged so PostHog does not retry it.
  if (eventName !== options.referralEvent) {
    return { kind: 'ignored', eventName, eventId };
  }
  if (uuid === undefined || uuid === null || uuid === '') {
    throw unprocessable('missing_event_uuid', 'event.uuid is required: it is what makes a reward happen exactly once');
  }
  if (eventId === undefined) throw unprocessable('invalid_event_uuid', 'event.uuid must be a UUID');

  const props = recordSchema.safeParse(properties ?? {});
  if (!props.success) throw unprocessable('invalid_properties', 'event.properties must be an object');
  const person = wrapped ? readPersonEmail(root.data.person) : undefined;

  const referrerEmail = readEmail(props.data[options.referrerEmailProperty], options.referrerEmailProperty, 'referrer');
  // The redeemer is usually the person the event was captured for, so their profile email stands in.
  const redeemerEmail = readEmail(
    props.data[options.redeemerEmailProperty] ?? person,
    options.redeemerEmailProperty,
    'redeemer',
  );

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
      // only so the rules can refuse a referrer who redeemed as themselves (issue #10, defect 3).
      customerEmail: redeemerEmail,
      ...(person === undefined ? {} : { personEmail: person }),
      distinctId: boundedString(distinctId, MAX_DISTINCT_ID_LENGTH),
      occurredAt: boundedString(timestamp, MAX_TIMESTAMP_LENGTH),
    },
  };
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
