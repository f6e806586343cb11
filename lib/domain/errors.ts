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
  /** Server-suggested wait (Retry-After, throttle restore time), in milliseconds. */
  public readonly retryAfterMs?: number;

  public constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

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
