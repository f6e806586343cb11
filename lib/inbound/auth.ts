import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time bearer check. Both sides are hashed first so the comparison takes the same
 * time whatever the length of the guess (timingSafeEqual alone throws on unequal lengths,
 * which would leak the secret's length).
 */
export function isAuthorisedBearer(authorization: string | undefined, secret: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '');
  const presented = createHash('sha256')
    .update(match?.[1] ?? '')
    .digest();
  const expected = createHash('sha256').update(secret).digest();
  return timingSafeEqual(presented, expected) && match !== null;
}
