import { RetryableError } from '../domain/errors';

export type Fetch = typeof fetch;

/** Statuses every upstream we call treats as transient, besides any other 5xx. */
const RETRYABLE_STATUSES = new Set([408, 425, 429]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status) || status >= 500;
}

/**
 * fetch with a per-request timeout. Network failures and timeouts become RetryableError:
 * the request may or may not have reached the server, which is why every caller must be
 * idempotent (persisted codes, deterministic event ids).
 */
export async function fetchWithTimeout(
  fetchImpl: Fetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  what: string,
): Promise<Response> {
  try {
    return await fetchImpl(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    // By name, not instanceof: under jest the abort error comes from another realm.
    const name = (error as { name?: unknown } | null)?.name;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    throw new RetryableError(`${what}: ${timedOut ? `no response within ${timeoutMs} ms` : 'network error'}`, {
      cause: error,
    });
  }
}

/** The response's body as text; a connection that drops or times out mid-body is a RetryableError (the request may have been applied). */
export async function responseText(response: Response, what: string): Promise<string> {
  try {
    return await response.text();
  } catch (error) {
    throw new RetryableError(`${what}: response body lost (HTTP ${response.status})`, { cause: error });
  }
}
