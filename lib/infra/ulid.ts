import { createHash } from 'node:crypto';

/**
 * Deterministic ULIDs. Customer.io ignores an event whose `id` it has already seen, so the id
 * must be a pure function of the PostHog event: a retry, a Lambda re-run or a DLQ redrive days
 * later then sends the same id and can never mail the customer twice. A random ULID would not.
 */

// Crockford base32: no I, L, O, U, so ids survive being read aloud or retyped.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
// 26 chars = 130 bits for 128 bits of data, so the first char can only be 0–7.
const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i;
// Version nibble 7 and the RFC 9562 variant (8, 9, a, b): only then are the first 48 bits unix ms.
const UUID_V7_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * A ULID derived from an event uuid. Time part: the uuid's own timestamp when it is a UUIDv7
 * (PostHog's are), so the id sorts by when the event happened; otherwise hash bits. Random part:
 * 80 bits of SHA-256(salt:uuid). The salt keeps ids derived for different purposes apart.
 */
export function ulidFromUuid(uuid: string, salt = 'customerio'): string {
  const normalized = uuid.trim().toLowerCase();
  const digest = createHash('sha256').update(`${salt}:${normalized}`).digest();
  const time = UUID_V7_PATTERN.test(normalized) ? Buffer.from(normalized.replace(/-/g, '').slice(0, 12), 'hex') : digest.subarray(0, 6);
  // Bytes 6..15 of the digest, so the fallback's time and random parts never share bits.
  return encodeBase32(Buffer.concat([time, digest.subarray(6, 16)]));
}

/** True for a 26-character Crockford base32 ULID (case-insensitive, as the ULID spec allows). */
export function isUlid(s: string): boolean {
  return typeof s === 'string' && ULID_PATTERN.test(s);
}

/** 16 bytes → 26 chars, most significant first, with two zero bits of padding at the top. */
function encodeBase32(bytes: Buffer): string {
  let value = BigInt(`0x${bytes.toString('hex')}`);
  let out = '';
  for (let i = 0; i < 26; i++) {
    out = ALPHABET[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}
