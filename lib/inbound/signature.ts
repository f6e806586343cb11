import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks verification (https://www.standardwebhooks.com), as PostHog's HTTP Webhook
 * destination signs when a signing secret is set (CONTRACTS.md §1):
 *
 *   webhook-id:        msg_…  (the same across retries of one delivery)
 *   webhook-timestamp: unix seconds
 *   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")> [v1,<…> …]
 *
 * where the key is the base64-decoded part of `whsec_<base64>`. Any one valid `v1` signature
 * passes (several appear while a secret is being rotated). Neither the secret nor the presented
 * signatures are ever put into a result message: those messages go back to the caller and into logs.
 */

export type SignatureFailureCode = 'missing_signature' | 'invalid_timestamp' | 'stale_timestamp' | 'bad_signature';

export type SignatureResult = { ok: true } | { ok: false; code: SignatureFailureCode; message: string };

export interface VerifyWebhookSignatureInput {
  /** `whsec_<base64>`, or the bare base64 key. */
  secret: string;
  /** `webhook-id` header. */
  id: string | undefined;
  /** `webhook-timestamp` header: unix seconds. */
  timestamp: string | undefined;
  /** `webhook-signature` header: space-separated `v1,<base64>` entries. */
  signatureHeader: string | undefined;
  /** The body exactly as received (after base64-decoding an API Gateway body); a string is taken as UTF-8. */
  body: Buffer | string;
  /** Current time, epoch milliseconds (Date.now() by default). */
  now?: number;
  /** How far the timestamp may be from now, either way. Default 300 (5 minutes). */
  toleranceSeconds?: number;
}

export const DEFAULT_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SIGNATURE_VERSION = 'v1';
const HMAC_SHA256_BYTES = 32;
/** A header carrying more than this many entries is not a rotation, it is someone guessing. */
const MAX_SIGNATURES = 16;

/** Thrown (never returned) for a secret that cannot be a key: a deployment problem, not a bad request. */
export class InvalidSigningSecretError extends Error {
  public constructor() {
    // Deliberately says nothing about the value.
    super('the webhook signing secret is not whsec_<base64> (or bare base64) with a non-empty key');
    this.name = 'InvalidSigningSecretError';
  }
}

/** The HMAC key: the base64 after `whsec_` (the prefix is optional). Throws InvalidSigningSecretError. */
export function signingKey(secret: string): Buffer {
  const trimmed = secret.trim();
  const encoded = trimmed.startsWith(SECRET_PREFIX) ? trimmed.slice(SECRET_PREFIX.length) : trimmed;
  if (!BASE64.test(encoded)) throw new InvalidSigningSecretError();
  const key = Buffer.from(encoded, 'base64');
  // An empty key would make every signature forgeable.
  if (key.length === 0) throw new InvalidSigningSecretError();
  return key;
}

/** `v1,<base64>` over `${id}.${timestamp}.${body}`: what a sender puts in `webhook-signature`. */
export function signWebhook(input: { secret: string; id: string; timestamp: string | number; body: Buffer | string }): string {
  return `${SIGNATURE_VERSION},${digest(signingKey(input.secret), input.id, String(input.timestamp), input.body).toString('base64')}`;
}

/**
 * Verifies a Standard Webhooks signature. Returns a failure for anything the request got wrong;
 * throws InvalidSigningSecretError only when the configured secret itself is unusable.
 */
export function verifyWebhookSignature(input: VerifyWebhookSignatureInput): SignatureResult {
  const key = signingKey(input.secret);
  const id = input.id?.trim();
  const timestamp = input.timestamp?.trim();
  const header = input.signatureHeader?.trim();
  if (!id || !timestamp || !header) {
    return fail('missing_signature', 'the webhook-id, webhook-timestamp and webhook-signature headers are required');
  }

  // Digits only: Number() would also take "1e9", " 0x10", "-5" or "Infinity".
  if (!/^\d{1,12}$/.test(timestamp)) {
    return fail('invalid_timestamp', 'webhook-timestamp must be unix seconds');
  }
  const toleranceSeconds = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((input.now ?? Date.now()) / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
    return fail('stale_timestamp', `webhook-timestamp is more than ${toleranceSeconds} seconds from now`);
  }

  const expected = digest(key, id, timestamp, input.body);
  const entries = header.split(/\s+/).slice(0, MAX_SIGNATURES);
  let valid = false;
  for (const entry of entries) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== SIGNATURE_VERSION) continue;
    const encoded = entry.slice(comma + 1);
    if (!BASE64.test(encoded)) continue;
    const presented = Buffer.from(encoded, 'base64');
    if (presented.length !== HMAC_SHA256_BYTES) continue;
    // No early exit: every entry costs the same whether or not an earlier one matched.
    if (timingSafeEqual(presented, expected)) valid = true;
  }
  return valid ? { ok: true } : fail('bad_signature', 'no valid v1 signature for this body, webhook-id and webhook-timestamp');
}

function digest(key: Buffer, id: string, timestamp: string, body: Buffer | string): Buffer {
  return createHmac('sha256', key)
    .update(`${id}.${timestamp}.`, 'utf8')
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest();
}

function fail(code: SignatureFailureCode, message: string): SignatureResult {
  return { ok: false, code, message };
}
