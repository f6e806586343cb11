import { PermanentError, RetryableError } from '../../domain/errors';
import { isRetryableStatus } from '../../infra/http';
import { maskCode } from '../../infra/mask';
import { parseRetryAfter } from '../../infra/retry';
import type { CreateGiftCardResult } from './gift-cards';
import type { BucketReading } from './pacing';
import type { ShopifyTransport } from './transport';

/** Shopify GraphQL response shapes and how the client reads them (lib/adapters/shopify/transport.ts and the calls beside it). */

export interface QueryCost {
  requestedQueryCost?: number;
  actualQueryCost?: number | null;
  throttleStatus?: { currentlyAvailable?: number; maximumAvailable?: number; restoreRate?: number };
}

export interface GraphQLResponse<T> {
  data?: T;
  /** Shopify sends a bare string here for auth and routing failures. */
  errors?: { message?: string; extensions?: { code?: string } }[] | string | Record<string, unknown>;
  extensions?: { cost?: QueryCost };
}

export interface UserError {
  code?: string | null;
  field?: string[] | null;
  message?: string;
}

/**
 * Sends a create of the reward `code` names and hands its payload (`data[operation]`) to `created`,
 * unless userErrors answer instead: TAKEN, with how many times the create went out (`sends`, see
 * ShopifyTransport.send), or an error thrown.
 */
export async function sendCreate<P extends { userErrors?: UserError[] }>(
  transport: ShopifyTransport,
  operation: string,
  document: string,
  variables: Record<string, unknown>,
  code: string,
  created: (payload: P) => CreateGiftCardResult,
): Promise<CreateGiftCardResult> {
  const secrets = [code];
  const { data, sends } = await transport.send<Record<string, P | null | undefined>>(operation, document, variables, secrets);
  const payload = data[operation];
  if (!payload) throw new RetryableError(`shopify ${operation}: response without a payload`);
  const userErrors = payload.userErrors ?? [];
  if (userErrors.length === 0) return created(payload);

  const describe = (e: UserError): string =>
    transport.redact(`${e.code ?? 'UNKNOWN'} on ${(e.field ?? []).join('.') || 'input'}: ${e.message ?? ''}`, secrets);
  const isTakenCode = (e: UserError): boolean => e.code === 'TAKEN' && (!e.field || e.field.includes('code'));
  // A request error outranks TAKEN: the same input could never have created the card.
  const permanent = userErrors.find((e) => e.code !== 'INTERNAL_ERROR' && !isTakenCode(e));
  if (permanent) {
    const reason = `shopify_${(permanent.code ?? 'user_error').toLowerCase()}`;
    throw new PermanentError(reason, `shopify ${operation} ${maskCode(code)} refused: ${describe(permanent)}`);
  }
  const internal = userErrors.find((e) => e.code === 'INTERNAL_ERROR');
  if (internal) throw new RetryableError(`shopify ${operation}: ${describe(internal)}`);
  return { status: 'taken', sends };
}

/**
 * The error for a status the caller has not handled itself, or undefined for a 2xx: 408/425/429
 * and 5xx retryable, after Retry-After (a 5xx is an outage); 404 a wrong store domain, `notFound`
 * says what to check; any other status permanent: 400 (malformed request), 402 (shop frozen), 423
 * (shop locked) answer the same on a retry.
 */
export function statusError(what: string, response: Response, now: () => number, notFound: string, detail = ''): Error | undefined {
  const { status } = response;
  if (isRetryableStatus(status)) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now());
    return new RetryableError(`${what}: HTTP ${status}`, { retryAfterMs, outage: status >= 500 });
  }
  if (status === 404) return new PermanentError('shopify_not_found', `${what}: HTTP 404${notFound}`);
  if (status < 200 || status >= 300) return new PermanentError(`shopify_http_${status}`, `${what}: HTTP ${status}${detail}`);
  return undefined;
}

export function bucketReading(cost: QueryCost | undefined): BucketReading | undefined {
  const t = cost?.throttleStatus;
  if (!t || typeof t.currentlyAvailable !== 'number') return undefined;
  return {
    currentlyAvailable: t.currentlyAvailable,
    maximumAvailable: t.maximumAvailable,
    restoreRate: t.restoreRate,
    requestedQueryCost: cost?.requestedQueryCost,
    actualQueryCost: cost?.actualQueryCost,
  };
}

/** Time until the bucket holds what the refused query asked for. */
export function throttleDelayMs(reading: BucketReading | undefined): number | undefined {
  const { requestedQueryCost: requested, restoreRate: rate } = reading ?? {};
  if (!reading || typeof requested !== 'number' || typeof rate !== 'number' || rate <= 0) return undefined;
  return Math.max(0, Math.ceil(((requested - reading.currentlyAvailable) / rate) * 1000));
}

export function parseJson<T>(text: string): T | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}
