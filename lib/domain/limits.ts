/**
 * The limits of the later steps that a referral's own fields can break, in one place, so they are
 * checked before the first side effect: by ingest (a 422, PostHog's event refused before it is
 * queued) and by the worker before its first Shopify call (a PermanentError, for a message that did
 * not come through ingest). Found out only at the Customer.io step, both cards would already exist
 * and the referral would be paid but never mailed, with no retry able to help.
 *
 * What Shopify is sent is bounded without looking at the referral: the note (discount title) is
 * giftCardNote(eventId, role), a fixed text around a UUID (< 100 characters); codes are 8–20
 * letters and digits (CONTRACTS.md §2, checked in lib/infra/config.ts with REWARD_CODE_LENGTH) and the
 * amount at most 2000 (same). No email reaches Shopify, so no referral can break a Shopify limit.
 *
 * The event data the worker sends is four strings: two codes and the two emails. Its largest
 * possible JSON is far below Customer.io's data limit, so only the identifier needs checking per
 * referral (tests/unit/limits.test.ts proves the bound).
 *
 * Customer.io Track API limits, from its published OpenAPI description
 * (docs.customer.io/api/track/, "Customer limits" and "Event limits"; mirrored in
 * api-evangelist/customer-io openapi/_original/customer-io-track-api-openapi.json):
 * a person's ID ≤ 150 bytes, event name ≤ 100 bytes, event data ≤ 100000 bytes. Over a limit it
 * answers 400 `{"meta":{"errors":[...]}}`, which no retry fixes.
 */
export const CUSTOMERIO_MAX_IDENTIFIER_BYTES = 150;
export const CUSTOMERIO_MAX_EVENT_NAME_BYTES = 100;
export const CUSTOMERIO_MAX_DATA_BYTES = 100_000;

/** RFC 5321's 256-octet path less its angle brackets; what ingest's email schema allows. */
export const MAX_EMAIL_LENGTH = 254;

export interface LimitProblem {
  /** Machine-readable: ingest's 422 error code, the worker's dead-letter reason. */
  code: string;
  message: string;
}

/**
 * Why this referral cannot go through every later step, or undefined when it can. The Customer.io
 * event is attached to the redeemer's email (see lib/domain/referral.ts), so that is the identifier.
 */
export function referralLimitProblem(referral: { redeemerEmail: string; referrerEmail: string }): LimitProblem | undefined {
  if (Buffer.byteLength(referral.redeemerEmail) > CUSTOMERIO_MAX_IDENTIFIER_BYTES) {
    return {
      code: 'redeemer_email_too_long',
      message: `the redeemer's email is longer than ${CUSTOMERIO_MAX_IDENTIFIER_BYTES} bytes, the most Customer.io accepts as a person's identifier: the reward could be issued but never mailed`,
    };
  }
  if (referral.referrerEmail.length > MAX_EMAIL_LENGTH) {
    return { code: 'referrer_email_too_long', message: `the referrer's email is longer than ${MAX_EMAIL_LENGTH} characters` };
  }
  return undefined;
}
