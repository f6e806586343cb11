import { randomBytes } from 'node:crypto';

/**
 * Uppercase letters and digits without the look-alikes 0/O and 1/I/L: codes are read off an
 * email and typed at checkout. Shopify codes are case-insensitive, so one case is all we need.
 */
export const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

export const MIN_CODE_LENGTH = 8;
export const MAX_CODE_LENGTH = 20;

export type RandomBytes = (size: number) => Uint8Array;

/**
 * A reward code from the CSPRNG. Bytes at or above the largest multiple of the alphabet size
 * are discarded (rejection sampling) so every character is equally likely.
 */
export function generateCode(length: number, random: RandomBytes = randomBytes): string {
  if (!Number.isInteger(length) || length < MIN_CODE_LENGTH || length > MAX_CODE_LENGTH) {
    throw new RangeError(`code length must be an integer from ${MIN_CODE_LENGTH} to ${MAX_CODE_LENGTH}`);
  }
  const limit = 256 - (256 % CODE_ALPHABET.length);
  let code = '';
  while (code.length < length) {
    for (const byte of random(length * 2)) {
      if (byte < limit) code += CODE_ALPHABET[byte % CODE_ALPHABET.length];
      if (code.length === length) break;
    }
  }
  return code;
}
