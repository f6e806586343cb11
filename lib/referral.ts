// zod/mini: the same validation as zod's classic API at a fraction of the bundle and load time.
import * as z from 'zod/mini';

/**
 * What ingest puts on the queue and the worker fulfils: the referral, already validated and
 * normalised, so the worker never re-reads PostHog's shape. `v` lets the format change
 * without stranding messages already in the queue or DLQ.
 */
export const referralSchema = z.object({
  v: z.literal(1),
  eventId: z.guid(),
  eventName: z.string(),
  referrerEmail: z.email(),
  redeemerEmail: z.email(),
  /** Customer.io identifier: the PostHog person's email, else the redeemer's. */
  customerEmail: z.email(),
  distinctId: z.optional(z.string()),
  occurredAt: z.optional(z.string()),
});

export type Referral = z.infer<typeof referralSchema>;

/** Emails are compared and stored trimmed and lowercased: Shopify, Customer.io and people treat them so. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
