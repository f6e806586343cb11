import { randomBytes } from 'node:crypto';

/**
 * The sandbox shop's side of the client credentials grant (shopify.dev "Using the client
 * credentials grant"): `POST /admin/oauth/access_token` with `grant_type=client_credentials`,
 * `client_id`, `client_secret` → `{ access_token, scope, expires_in }`. Real tokens last 24 hours
 * (expires_in 86399) with no refresh token; here the lifetime is a setting so renewal can be
 * watched in seconds (SANDBOX_SHOPIFY_TOKEN_TTL).
 */

export interface SandboxAppCredentials {
  clientId: string;
  clientSecret: string;
  /** default 86 399 000 (Shopify's 24 h less a second) */
  tokenTtlMs?: number;
  /** default 'write_gift_cards,read_gift_cards,write_discounts,read_discounts' */
  scope?: string;
}

export interface TokenReply {
  status: number;
  body: Record<string, unknown>;
}

const DEFAULT_TTL_MS = 86_399_000;
const DEFAULT_SCOPE = 'write_gift_cards,read_gift_cards,write_discounts,read_discounts';

export class SandboxTokens {
  private readonly issued = new Map<string, number>();
  private readonly ttlMs: number;

  public constructor(
    private readonly app: SandboxAppCredentials,
    private readonly now: () => number = Date.now,
  ) {
    this.ttlMs = app.tokenTtlMs ?? DEFAULT_TTL_MS;
  }

  /** Answers a token request; `contentType` decides how `raw` is read (form, or JSON as some libraries send). */
  public grant(raw: string, contentType: string | undefined): TokenReply {
    const params = readParams(raw, contentType);
    if (params.get('grant_type') !== 'client_credentials') {
      return { status: 400, body: { error: 'unsupported_grant_type' } };
    }
    // RFC 6749 §5.2: a client that fails authentication is invalid_client. Shopify's exact body
    // is unconfirmed (400 {"error":"invalid_request"} is what it answers other bad grants).
    if (params.get('client_id') !== this.app.clientId || params.get('client_secret') !== this.app.clientSecret) {
      return { status: 400, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
    }
    const now = this.now();
    for (const [token, expiresAt] of this.issued) if (expiresAt <= now) this.issued.delete(token);
    const token = `shpat_${randomBytes(16).toString('hex')}`;
    this.issued.set(token, now + this.ttlMs);
    return {
      status: 200,
      body: { access_token: token, scope: this.app.scope ?? DEFAULT_SCOPE, expires_in: Math.max(1, Math.floor(this.ttlMs / 1000)) },
    };
  }

  /** True while `token` was issued here and has not expired. */
  public valid(token: string | undefined): boolean {
    const expiresAt = token === undefined ? undefined : this.issued.get(token);
    return expiresAt !== undefined && this.now() < expiresAt;
  }

  /** Every issued token stops working now, as when the app is reinstalled or its secret rotated. */
  public revokeAll(): void {
    this.issued.clear();
  }
}

function readParams(raw: string, contentType: string | undefined): URLSearchParams {
  if (contentType?.includes('application/json')) {
    try {
      const json = JSON.parse(raw) as Record<string, unknown>;
      return new URLSearchParams(Object.entries(json).map(([k, v]): [string, string] => [k, String(v)]));
    } catch {
      return new URLSearchParams();
    }
  }
  return new URLSearchParams(raw);
}
