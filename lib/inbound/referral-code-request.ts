import { RejectedError } from '../domain/errors';
import { MAX_EMAIL_LENGTH } from '../domain/limits';
import { EMAIL_PATTERN, normaliseEmail } from '../domain/referral';
import type { CodeOwner } from '../domain/referral-codes';

/** A request body is a few dozen bytes; this is generous and still keeps a flood cheap. */
export const MAX_CODE_REQUEST_BYTES = 4_096;
/** Longest PostHog distinct id taken here and queued by ingest (lib/inbound/posthog-webhook.ts). */
export const MAX_DISTINCT_ID_LENGTH = 400;

/**
 * The app backend's `POST /referral-codes` body, `{"email": "...", "distinct_id": "..."}`, as the
 * referrer it names; a RejectedError (400/413/422) for anything else. Other keys are ignored.
 */
export function parseCodeRequest(body: string): CodeOwner {
  if (Buffer.byteLength(body) > MAX_CODE_REQUEST_BYTES)
    throw new RejectedError(413, 'body_too_large', `body is larger than ${MAX_CODE_REQUEST_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new RejectedError(400, 'invalid_json', 'body is not JSON');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new RejectedError(400, 'invalid_body', 'body must be a JSON object');
  const { email, distinct_id: distinctId } = json as Record<string, unknown>;
  if (email === undefined || email === null || email === '')
    throw new RejectedError(422, 'missing_email', "email (the referrer's) is required");
  if (typeof email !== 'string' || email.length > MAX_EMAIL_LENGTH || !EMAIL_PATTERN.test(email.trim())) {
    throw new RejectedError(422, 'invalid_email', `email must be an email address of at most ${MAX_EMAIL_LENGTH} characters`);
  }
  if (
    distinctId !== undefined &&
    distinctId !== null &&
    (typeof distinctId !== 'string' || distinctId.trim() === '' || distinctId.length > MAX_DISTINCT_ID_LENGTH)
  ) {
    throw new RejectedError(
      422,
      'invalid_distinct_id',
      `distinct_id must be a non-empty string of at most ${MAX_DISTINCT_ID_LENGTH} characters`,
    );
  }
  return { email: normaliseEmail(email), ...(typeof distinctId === 'string' ? { distinctId: distinctId.trim() } : {}) };
}
