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
  /** Customer.io identifier: the PostHog person's email, else the redeemer's. */
  customerEmail: string;
  distinctId?: string;
  occurredAt?: string;
}

/** zod's default email pattern; ingest checks PostHog's emails with it too, so both sides agree. */
export const EMAIL_PATTERN =
  /^(?:[A-Za-z0-9_'+\-]+\.)*[A-Za-z0-9_'+\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$/;

/** Any 8-4-4-4-12 hex id, as PostHog's event uuids are (zod's `guid`). */
export const EVENT_ID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const isEmail = (value: unknown): value is string => typeof value === 'string' && EMAIL_PATTERN.test(value);
const isOptionalString = (value: unknown): value is string | undefined => value === undefined || typeof value === 'string';

/**
 * The referral in a queue message body, or undefined when it is not one this worker understands
 * (another version, a hand-edited redrive). Checked by hand rather than with zod: the worker
 * reads nothing else, and zod would cost its bundle ~30 KB (#5, docs/PERFORMANCE.md).
 * Unknown keys are dropped.
 */
export function parseReferral(body: string): Referral | undefined {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (message === null || typeof message !== 'object') return undefined;
  const { v, eventId, eventName, referrerEmail, redeemerEmail, customerEmail, distinctId, occurredAt } = message as Record<string, unknown>;
  if (v !== 1 || typeof eventId !== 'string' || !EVENT_ID_PATTERN.test(eventId) || typeof eventName !== 'string') return undefined;
  if (!isEmail(referrerEmail) || !isEmail(redeemerEmail) || !isEmail(customerEmail)) return undefined;
  if (!isOptionalString(distinctId) || !isOptionalString(occurredAt)) return undefined;
  return {
    v,
    eventId,
    eventName,
    referrerEmail,
    redeemerEmail,
    customerEmail,
    ...(distinctId === undefined ? {} : { distinctId }),
    ...(occurredAt === undefined ? {} : { occurredAt }),
  };
}

/** Emails are compared and stored trimmed and lowercased: Shopify, Customer.io and people treat them so. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
