import { RetryableError } from '../domain/errors';

/**
 * When a record that failed retryably is received again: the worker sets it on the record's
 * receipt handle (ChangeMessageVisibility) before reporting it failed, so the wait fits the cause
 * instead of every failure waiting out the queue's visibility timeout.
 *
 * - A known wait (the error's `retryAfterMs`: a lease or claim held by another referral, Shopify's
 *   THROTTLED refill time, a Retry-After): that wait plus up to 8 s of jitter (records that failed
 *   together come back spread out), doubled on each further receive. A claim's holder that has not
 *   decided within seconds is slow for a reason, and the waits together must still outlast it
 *   before the queue's maxReceiveCount dead-letters the waiter: 2 s + jitter gives 2–10, 4–20,
 *   8–40 and 16–80 s, so five receives span 30 s to 2.5 min.
 * - Anything else (an outage, a timeout, a 5xx with or without Retry-After): exponential backoff by
 *   receive count from 30 s, ×2 per receive, with equal jitter: 15–30, 30–60, 60–120, then 120–240 s
 *   (a longer Retry-After wins), so the four waits span 3.75 to 7.5 minutes before the last receive.
 *   ×2, not more: the try after an outage ends must come within a minute of its end (a wait past
 *   60 s comes only from the third receive on), and a 5xx's Retry-After of a second or two would
 *   otherwise spend all five receives inside two minutes of an outage.
 *
 * Every wait is capped at the queue's own visibility timeout: never later than the queue alone would
 * bring the record back, and a test queue with a 1 s timeout keeps its 1 s redelivery.
 */
export interface RedeliveryPlan {
  /** ChangeMessageVisibility's VisibilityTimeout: whole seconds, 0 to the queue's visibility timeout. */
  visibilitySeconds: number;
  cause: 'hinted' | 'backoff';
}

/** The jitter added to a known wait, ms. */
const HINT_JITTER_MS = 8_000;
/** A known wait shorter than this is rounded up: a second is SQS's unit. */
const MIN_HINT_MS = 1_000;
const BACKOFF_BASE_MS = 30_000;
const BACKOFF_FACTOR = 2;

export function planRedelivery(
  error: unknown,
  receiveCount: number,
  queueVisibilitySeconds: number,
  random: () => number = Math.random,
): RedeliveryPlan {
  const cap = Math.max(0, queueVisibilitySeconds) * 1000;
  const n = Math.max(1, Math.floor(Number.isFinite(receiveCount) ? receiveCount : 1));
  const retryable = error instanceof RetryableError ? error : undefined;
  const hint = Number.isFinite(retryable?.retryAfterMs) ? (retryable?.retryAfterMs as number) : undefined;
  const seconds = (ms: number): number => Math.ceil(Math.min(cap, ms) / 1000);
  if (!retryable?.outage && hint !== undefined && hint >= 0) {
    return { visibilitySeconds: seconds((Math.max(hint, MIN_HINT_MS) + random() * HINT_JITTER_MS) * 2 ** (n - 1)), cause: 'hinted' };
  }
  const ceiling = Math.min(cap, BACKOFF_BASE_MS * BACKOFF_FACTOR ** (n - 1));
  return { visibilitySeconds: seconds(Math.max(ceiling / 2 + (random() * ceiling) / 2, hint ?? 0)), cause: 'backoff' };
}
