import { RetryableError } from '../domain/errors';

export interface RetryOptions {
  /** Epoch ms after which no new attempt starts (the Lambda's remaining time less a margin). */
  deadline: number;
  /** First backoff step; doubles each attempt (full jitter). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxAttempts?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onRetry?: (error: RetryableError, attempt: number, delayMs: number) => void;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn`, retrying RetryableErrors with full-jitter exponential backoff. A server's
 * Retry-After is a floor, not a suggestion. When the next wait would cross the deadline the
 * last error is rethrown, so SQS (visibility timeout, then the DLQ) takes over the retrying.
 * Any other error propagates at once.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const {
    deadline,
    baseDelayMs = 200,
    maxDelayMs = 5_000,
    maxAttempts = 8,
    now = Date.now,
    sleep: wait = sleep,
    random = Math.random,
  } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!(error instanceof RetryableError) || attempt >= maxAttempts) throw error;
      const backoff = random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.max(backoff, error.retryAfterMs ?? 0);
      if (now() + delay >= deadline) throw error;
      options.onRetry?.(error, attempt, delay);
      await wait(delay);
    }
  }
}

/** Parses Retry-After (delta seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
