import { PermanentError, RetryableError } from '../../domain/errors';
import { type Fetch, fetchWithTimeout, responseText } from '../../infra/http';
import { redactText } from '../../infra/mask';
import { parseRetryAfter } from '../../infra/retry';
import type { ShopifyTokenProvider } from './auth';
import { bucketReading, parseJson, statusError, throttleDelayMs, type GraphQLResponse, type QueryCost } from './graphql';
import { ShopifyPacer, type BucketReading } from './pacing';

export interface ShopifyTransportOptions {
  /** `https://{store}.myshopify.com`, no trailing path. */
  baseUrl: string;
  /** Where tokens come from (lib/adapters/shopify/auth.ts): a static Admin API token or the client credentials grant. */
  auth: ShopifyTokenProvider;
  apiVersion: string;
  fetch?: Fetch;
  timeoutMs?: number;
  now?: () => number;
  /**
   * Holds each request back until the shop's bucket (as last reported) covers it; see lib/adapters/shopify/pacing.ts.
   * Default: a pacer of this transport's own, so every issuer sharing the transport shares the budget.
   * Pass one to share it between transports of the same shop, or `false` to send every request at once.
   */
  pacer?: ShopifyPacer | false;
}

/** The bucket as an answer reported it, and `at` when we saw it (ms, from `now`): it keeps refilling after that. */
export type ThrottleStatus = Required<Pick<BucketReading, 'currentlyAvailable' | 'maximumAvailable' | 'restoreRate'>> & { at: number };

const THROTTLE_FALLBACK_MS = 1_000;

/**
 * The one way a GraphQL document reaches the Admin API: the token (renewed once on a 401), the
 * pacer's reservation, and every HTTP/GraphQL outcome mapped onto RetryableError/PermanentError.
 * The gift-card, discount-code and deactivation calls only read `data`; none of them retries, so
 * the retry policy lives with the caller (withRetry) rather than being split between here and there.
 */
export class ShopifyTransport {
  private readonly endpoint: string;
  /** Which Admin API version this transport speaks: the gift-card amount input depends on it. */
  public readonly apiVersion: string;
  private readonly now: () => number;
  public readonly pacer?: ShopifyPacer;
  /** The bucket as of the last response, so a caller can pace itself before being throttled. */
  public throttleStatus?: ThrottleStatus;
  /** The last tokens sent: an error message echoing one must not carry it into a log. */
  private readonly sentTokens: string[] = [];

  public constructor(private readonly options: ShopifyTransportOptions) {
    this.endpoint = `${options.baseUrl.replace(/\/+$/, '')}/admin/api/${options.apiVersion}/graphql.json`;
    this.apiVersion = options.apiVersion;
    this.now = options.now ?? Date.now;
    // The pacer keeps its own clock: `now` may be frozen (tests), and the pacer must see time pass.
    this.pacer = options.pacer === false ? undefined : (options.pacer ?? new ShopifyPacer());
  }

  /** A Shopify message fit for a log: without the given secrets (codes) or any token recently sent. */
  public redact(message: string, secrets: string[]): string {
    return redactText(message, secrets, this.sentTokens);
  }

  /** Sends one document and returns its `data`; `secrets` (codes in the variables) never reach an error message. */
  public async request<T>(operation: string, query: string, variables: Record<string, unknown>, secrets: string[]): Promise<T> {
    return (await this.send<T>(operation, query, variables, secrets)).data;
  }

  /**
   * As `request`, and how many times the document went out: 2 when a 401 renewed the token and it
   * was sent again. A create's caller needs it: a create sent twice may have made the reward on
   * the first send, so its TAKEN may be our own reward not yet searchable (lib/domain/rewards.ts).
   */
  public async send<T>(
    operation: string,
    query: string,
    variables: Record<string, unknown>,
    secrets: string[],
    renewed = false,
  ): Promise<{ data: T; sends: number }> {
    const what = `shopify ${operation}`;
    // Before the pacer: waiting for a token must not hold a reservation of the shop's budget.
    const { auth } = this.options;
    const accessToken = await auth.token();
    if (!this.sentTokens.includes(accessToken)) {
      this.sentTokens.unshift(accessToken);
      this.sentTokens.length = Math.min(this.sentTokens.length, 2);
    }
    const pacer = this.pacer;
    const permit = await pacer?.acquire(operation);
    let response: Response;
    let body: GraphQLResponse<T> | undefined;
    let cost: QueryCost | undefined;
    let reading: BucketReading | undefined;
    try {
      response = await fetchWithTimeout(
        this.options.fetch ?? fetch,
        this.endpoint,
        {
          method: 'POST',
          headers: { 'X-Shopify-Access-Token': accessToken, 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ query, variables }),
          // A redirected POST comes back as a GET to somewhere else: surface it instead.
          redirect: 'manual',
        },
        this.options.timeoutMs ?? 10_000,
        what,
      );

      body = parseJson<GraphQLResponse<T>>(await responseText(response, what));
      cost = body?.extensions?.cost;
    } finally {
      // Every outcome ends the reservation; no reading means the points count as spent.
      reading = bucketReading(cost);
      if (pacer && permit) pacer.settle(permit, reading);
    }
    if (reading) {
      const { currentlyAvailable, maximumAvailable = 0, restoreRate = 0 } = reading;
      this.throttleStatus = { currentlyAvailable, maximumAvailable, restoreRate, at: this.now() };
    }

    const status = response.status;
    const errors = Array.isArray(body?.errors) ? body.errors : [];
    const scrub = (message: string): string => redactText(message, secrets, [accessToken]);

    // Whether THROTTLED arrives with 200 or 429 is unconfirmed; the body decides, not the status.
    if ((status === 200 || status === 429) && errors.some((e) => e.extensions?.code === 'THROTTLED')) {
      // The later of Shopify's own arithmetic for this query and the pacer's for every request of
      // this container ahead of it: a record that gives up on THROTTLED comes back when the bucket
      // has refilled for it, not before (lib/infra/redelivery.ts).
      const shopify = throttleDelayMs(reading) ?? parseRetryAfter(response.headers.get('retry-after'), this.now());
      const queued = this.pacer?.refillMs(cost?.requestedQueryCost ?? this.pacer.costOf(operation));
      const retryAfterMs = shopify === undefined && queued === undefined ? THROTTLE_FALLBACK_MS : Math.max(shopify ?? 0, queued ?? 0);
      throw new RetryableError(`${what}: throttled (HTTP ${status})`, { retryAfterMs });
    }
    if (status === 401 && !renewed && auth.rejected(accessToken)) {
      // The token expired or was revoked: renew once and send the same request again. Shopify
      // checks the token before it runs anything, and even if it had run a giftCardCreate, that
      // is safe to repeat only because the code is persisted in the ledger first: a second
      // create answers TAKEN, and `sends` (above) tells the caller why.
      const resent = await this.send<T>(operation, query, variables, secrets, true);
      return { data: resent.data, sends: resent.sends + 1 };
    }
    if (status === 401 || status === 403) {
      const which = auth.mode === 'static' ? 'SHOPIFY_ACCESS_TOKEN' : 'a freshly granted token';
      throw new PermanentError('shopify_auth', `${what}: HTTP ${status}, ${which} rejected or missing scope`);
    }
    const detail = typeof body?.errors === 'string' ? `: ${scrub(body.errors)}` : '';
    const failed = statusError(what, response, this.now, ', check the store domain and API version', detail);
    if (failed) throw failed;
    if (!body || typeof body !== 'object') {
      // A proxy or an outage page, not Shopify's API answering.
      throw new RetryableError(`${what}: HTTP ${status} with a body that is not JSON`);
    }
    if (errors.length > 0 || !Array.isArray(body.errors ?? [])) {
      const messages = scrub(
        errors.length > 0 ? errors.map((e) => e.message ?? e.extensions?.code ?? 'unknown error').join('; ') : JSON.stringify(body.errors),
      );
      // INTERNAL_SERVER_ERROR is Shopify's own transient failure, not a fault of the request.
      if (errors.length > 0 && errors.every((e) => e.extensions?.code === 'INTERNAL_SERVER_ERROR')) {
        throw new RetryableError(`${what}: Shopify internal error: ${messages}`);
      }
      throw new PermanentError('shopify_graphql', `${what}: GraphQL error: ${messages}`);
    }
    if (!body.data) throw new RetryableError(`${what}: response without data`);
    return { data: body.data, sends: 1 };
  }
}
