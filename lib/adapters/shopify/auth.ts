import { PermanentError, RetryableError } from '../../domain/errors';
import { type Fetch, fetchWithTimeout, responseText } from '../../infra/http';
import { parseJson, statusError } from './graphql';

/**
 * Where the Admin API token comes from. Two kinds of Shopify app exist today:
 * - admin-created custom apps (none new since 2026-01-01) keep a static `shpat_` token;
 * - Dev Dashboard apps get a token through the client credentials grant, which lasts 24 hours
 *   (`expires_in` 86399) and comes with no refresh token: the app asks again.
 * Source: shopify.dev "Using the client credentials grant"
 * (docs/apps/build/authentication-authorization/access-tokens/client-credentials-grant) and
 * "About client credentials" (…/authentication-authorization/client-secrets).
 */
export interface ShopifyTokenProvider {
  readonly mode: 'static' | 'client_credentials';
  /** A token believed valid now; concurrent callers share one renewal. */
  token(): Promise<string>;
  /**
   * The Admin API refused `token` (HTTP 401). True when a different token may now be had, so the
   * caller may retry once; false for a static token, which cannot change.
   */
  rejected(token: string): boolean;
}

export type ShopifyAuthConfig =
  { mode: 'static'; accessToken: string } | { mode: 'client_credentials'; clientId: string; clientSecret: string };

export class StaticToken implements ShopifyTokenProvider {
  public readonly mode = 'static';

  public constructor(private readonly accessToken: string) {}

  public token(): Promise<string> {
    return Promise.resolve(this.accessToken);
  }

  public rejected(): boolean {
    return false;
  }
}

export interface ClientCredentialsOptions {
  /** `https://{store}.myshopify.com` (or SHOPIFY_BASE_URL), no trailing path. */
  origin: string;
  clientId: string;
  clientSecret: string;
  fetch?: Fetch;
  timeoutMs?: number;
  now?: () => number;
  /**
   * Renew this long before the token expires, so a request started just before expiry does not
   * carry a token that dies in flight. Capped at a fifth of the lifetime for short-lived tokens.
   */
  renewMarginMs?: number;
}

/** 5m of a 24h token: far more than one Lambda invocation (at most 15m) needs to finish a request. */
const DEFAULT_RENEW_MARGIN_MS = 5 * 60_000;
/** Reason for bad credentials: names the settings, so `ops status` tells the operator what to fix. */
export const AUTH_INVALID_REASON = 'shopify_auth_invalid';

/**
 * The client credentials grant, cached per container: one token for every record, renewed a
 * margin before it expires, and renewed at once when the Admin API says it is no longer valid.
 * Never logs or returns in an error the token, the client secret or the token endpoint's body.
 */
export class ClientCredentialsTokens implements ShopifyTokenProvider {
  public readonly mode = 'client_credentials';
  private readonly endpoint: string;
  private readonly now: () => number;
  private current?: { value: string; renewAt: number };
  private renewal?: Promise<string>;

  public constructor(private readonly options: ClientCredentialsOptions) {
    this.endpoint = `${options.origin.replace(/\/+$/, '')}/admin/oauth/access_token`;
    this.now = options.now ?? Date.now;
  }

  public token(): Promise<string> {
    if (this.current && this.now() < this.current.renewAt) return Promise.resolve(this.current.value);
    // One renewal in flight at a time: concurrent records wait on it instead of each asking.
    this.renewal ??= this.grant().finally(() => {
      this.renewal = undefined;
    });
    return this.renewal;
  }

  public rejected(token: string): boolean {
    // Only the token that was refused is dropped: if a renewal already replaced it, the retry
    // uses the new one and no second grant is asked for.
    if (this.current?.value === token) this.current = undefined;
    return true;
  }

  private async grant(): Promise<string> {
    const what = 'shopify access token (client credentials grant)';
    const started = this.now();
    const response = await fetchWithTimeout(
      this.options.fetch ?? fetch,
      this.endpoint,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: this.options.clientId,
          client_secret: this.options.clientSecret,
        }).toString(),
        redirect: 'manual',
      },
      this.options.timeoutMs ?? 10_000,
      what,
    );
    const status = response.status;
    // The body is read but never quoted: on success it is the token, on failure it may echo the request.
    const body = parseJson<{ access_token?: unknown; expires_in?: unknown }>(await responseText(response, what));

    if (status === 400 || status === 401 || status === 403) {
      // Shopify answers a refused grant with 400 (`{"error":"invalid_request"|"invalid_client",…}`)
      // or 401; the same credentials will be refused every time, so the record goes to the DLQ.
      throw new PermanentError(
        AUTH_INVALID_REASON,
        `${what}: HTTP ${status}: SHOPIFY_CLIENT_ID/SHOPIFY_CLIENT_SECRET were refused by ${this.options.origin} ` +
          '(check the pair in the secret, and that the app version with the scopes is released and installed on this store)',
      );
    }
    const failed = statusError(what, response, this.now, ` from ${this.endpoint}, check SHOPIFY_STORE_DOMAIN`);
    if (failed) throw failed;

    const token = body?.access_token;
    if (typeof token !== 'string' || token === '') {
      // A proxy or an outage page answering 200: not Shopify's grant, so try again later.
      throw new RetryableError(`${what}: HTTP ${status} without an access token`);
    }
    const lifetimeMs = typeof body?.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : undefined;
    // No expires_in: keep it until the Admin API refuses it (the 401 path renews then).
    const margin = lifetimeMs === undefined ? 0 : Math.min(this.options.renewMarginMs ?? DEFAULT_RENEW_MARGIN_MS, lifetimeMs / 5);
    this.current = { value: token, renewAt: lifetimeMs === undefined ? Number.POSITIVE_INFINITY : started + lifetimeMs - margin };
    return token;
  }
}

/** The provider a worker config asks for. */
export function tokenProviderFor(
  origin: string,
  auth: ShopifyAuthConfig,
  options: { fetch?: Fetch; timeoutMs?: number } = {},
): ShopifyTokenProvider {
  if (auth.mode === 'static') return new StaticToken(auth.accessToken);
  return new ClientCredentialsTokens({ origin, clientId: auth.clientId, clientSecret: auth.clientSecret, ...options });
}
