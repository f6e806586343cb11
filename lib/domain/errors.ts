/** What a thrown value says, for a log line or a ledger note: an error's message, anything else as a string. */
export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The three ways a step can fail. Every adapter maps what it sees onto one of them, so the
 * worker decides retry vs dead-letter in one place and nothing is swallowed.
 */
export class RewardsError extends Error {
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Transient: network, timeouts, 408/429/5xx, GraphQL THROTTLED, a lease held elsewhere. Retry with backoff. */
export class RetryableError extends RewardsError {
  /**
   * How long to wait before trying again, in milliseconds, where the cause says: a server's
   * Retry-After, Shopify's throttle refill time, another referral's lease or claim. Within an
   * invocation it is a floor on withRetry's backoff; for the record's next delivery the worker
   * starts from it (lib/infra/redelivery.ts). Absent: an outage or unknown cause, backed off.
   */
  public readonly retryAfterMs?: number;
  /**
   * The service itself is down (a 5xx), whatever Retry-After it sent: the record's next delivery
   * backs off as from any outage, the hint only a floor, so five receives outlast minutes of it.
   */
  public readonly outage: boolean;

  public constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number; outage?: boolean }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
    this.outage = options?.outage === true;
  }
}

/**
 * The wait hinted when another referral holds what this one needs (its lease, a claim it has not
 * decided on yet): such a holder is usually done within a second or two, so the record is
 * delivered again in seconds, not after the queue's visibility timeout (lib/infra/redelivery.ts).
 */
export const CONTENTION_RETRY_MS = 2_000;

/** Will fail the same way every time (401/403, INVALID, bad config): dead-letter at once, with the reason. */
export class PermanentError extends RewardsError {
  public readonly reason: string;

  public constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** A request we refuse at the door (ingest): becomes a 4xx JSON error and changes nothing. */
export class RejectedError extends RewardsError {
  public readonly statusCode: number;
  public readonly code: string;

  public constructor(statusCode: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.statusCode = statusCode;
    this.code = code;
  }
}
