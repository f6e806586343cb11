import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenLocal, readBody, sendJson, type LocalServer } from '../http';
import { LeakyBucket } from './shopify-bucket';
import { codeDiscountNodeByCode, discountCodeBasicCreate, discountCodeDeactivate, type FakeDiscountCode } from './shopify-discounts';
import { giftCardCreate, giftCardDeactivate, giftCards, type FakeGiftCard } from './shopify-gift-cards';
import { SandboxTokens, type SandboxAppCredentials } from './shopify-oauth';
import { adminSchema, checkRequest } from './shopify-schema';
import type { SandboxShop } from './shopify-shop';
import { graphqlError, isObject, userError, type Json, type UserError } from './shopify-values';

export type { FakeDiscountCode } from './shopify-discounts';
export type { FakeGiftCard } from './shopify-gift-cards';

/**
 * A fake Shopify GraphQL Admin API for gift cards, on 127.0.0.1. It enforces what the real one
 * does and the client depends on (auth, variables, code rules, case-insensitive uniqueness, the
 * leaky bucket, codes never readable back) and can inject the failures exactly-once must survive,
 * including the nasty one: a mutation applied whose response never arrives. Every request is
 * checked against Shopify's published schema of the version in its URL (./shopify-schema.ts), so
 * the sandbox never accepts a document the real shop would refuse; and it speaks the client
 * credentials grant (./shopify-oauth.ts) with tokens that expire.
 *
 * This file is the server (routing, auth, schema, faults, latency); the rewards are in
 * ./shopify-gift-cards.ts and ./shopify-discounts.ts, the rate limit in ./shopify-bucket.ts.
 */

export interface FakeShopifyOptions {
  /** 0 = random */
  port?: number;
  /** default 'shpat_sandbox' */
  accessToken?: string;
  /** When set, other versions get the 404 a wrong version gets from Shopify (so do versions without a published schema). */
  apiVersion?: string;
  /**
   * A Dev Dashboard app: tokens from `POST /admin/oauth/access_token` are accepted until they
   * expire, and `env` gives SHOPIFY_CLIENT_ID/SHOPIFY_CLIENT_SECRET instead of the static token
   * (which keeps working, as an admin-created app's would on the same shop).
   */
  clientCredentials?: SandboxAppCredentials;
  /** default 1000 points, 100 per second */
  bucket?: { size: number; restoreRate: number };
  /** default 10 */
  createCost?: number;
  /** default 2 */
  queryCost?: number;
  /** default 0 */
  latencyMs?: number;
  /** default 'USD' */
  currencyCode?: string;
  onCard?: (card: FakeGiftCard) => void;
  /** A gift card or discount code deactivated (revoke). */
  onDeactivate?: (reward: { id: string; code: string; kind: 'gift card' | 'discount code' }) => void;
}

export type ShopifyFault =
  | 'http500'
  | 'http503'
  | 'http429'
  | 'throttled'
  /** hold the response until the client gives up: never answer, keep no effect */
  | 'timeout'
  /** APPLY the mutation, then destroy the socket without answering */
  | 'lost-response'
  /** userErrors INTERNAL_ERROR (a GraphQL INTERNAL_SERVER_ERROR for queries) */
  | 'internal-error'
  | 'unauthorized';

type Operation =
  | 'giftCardCreate'
  | 'giftCards'
  | 'discountCodeBasicCreate'
  | 'codeDiscountNodeByCode'
  | 'giftCardDeactivate'
  | 'discountCodeDeactivate'
  | 'shop'
  | 'other';

export interface FakeShopify {
  url: string;
  /** The worker settings that point at this fake: its static token, or its app's client credentials. */
  readonly env: { SHOPIFY_BASE_URL: string } & (
    { SHOPIFY_ACCESS_TOKEN: string } | { SHOPIFY_CLIENT_ID: string; SHOPIFY_CLIENT_SECRET: string }
  );
  /** Statuses of the client credentials grants asked for, in order. */
  tokenRequests: number[];
  /** Every granted token stops working (an early expiry): the next Admin API call gets a 401. */
  revokeTokens(): void;
  cards: FakeGiftCard[];
  discounts: FakeDiscountCode[];
  /** status 0: no answer was sent (timeout, lost-response) */
  requests: { operation: Operation; status: number }[];
  throttledCount: number;
  /** applied to the next requests in order */
  injectFaults(...faults: ShopifyFault[]): void;
  /** consulted when no injected fault is queued, e.g. a random 20 % for chaos */
  setFaultPolicy(policy: ((op: string) => ShopifyFault | undefined) | undefined): void;
  reset(): void;
  /** Where its socket is bound, as the operating system reports it. */
  listening(): { address: string; port: number };
  close(): Promise<void>;
}

const UNAUTHORIZED_BODY = { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' };
const MAX_BODY_BYTES = 1_000_000;
const RETRY_AFTER_SECONDS = '1';

interface GraphQLReply {
  status: number;
  body: Json;
  headers?: Record<string, string>;
}

export async function startFakeShopify(options: FakeShopifyOptions = {}): Promise<FakeShopify> {
  const fake = new FakeShopifyServer(options);
  await fake.listen(options.port ?? 0);
  return fake;
}

class FakeShopifyServer implements FakeShopify {
  public url = '';
  public readonly cards: FakeGiftCard[] = [];
  public readonly discounts: FakeDiscountCode[] = [];
  public readonly requests: { operation: Operation; status: number }[] = [];
  public readonly tokenRequests: number[] = [];
  public throttledCount = 0;

  public get env(): FakeShopify['env'] {
    const app = this.options.clientCredentials;
    return app
      ? { SHOPIFY_BASE_URL: this.url, SHOPIFY_CLIENT_ID: app.clientId, SHOPIFY_CLIENT_SECRET: app.clientSecret }
      : { SHOPIFY_BASE_URL: this.url, SHOPIFY_ACCESS_TOKEN: this.accessToken };
  }

  private server?: LocalServer;
  private readonly accessToken: string;
  private readonly bucket: LeakyBucket;
  private readonly shop: SandboxShop;
  private readonly createCost: number;
  private readonly queryCost: number;
  private readonly latencyMs: number;
  private faults: ShopifyFault[] = [];
  private policy?: (op: string) => ShopifyFault | undefined;
  private nextId = 1;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly tokens?: SandboxTokens;

  public constructor(private readonly options: FakeShopifyOptions) {
    this.accessToken = options.accessToken ?? 'shpat_sandbox';
    this.bucket = new LeakyBucket(options.bucket?.size ?? 1000, options.bucket?.restoreRate ?? 100);
    this.createCost = options.createCost ?? 10;
    this.queryCost = options.queryCost ?? 2;
    this.latencyMs = options.latencyMs ?? 0;
    this.tokens = options.clientCredentials ? new SandboxTokens(options.clientCredentials) : undefined;
    this.shop = {
      cards: this.cards,
      discounts: this.discounts,
      currencyCode: options.currencyCode ?? 'USD',
      nextId: () => this.nextId++,
      onCard: options.onCard,
      onDeactivate: options.onDeactivate,
    };
  }

  public async listen(port: number): Promise<void> {
    this.server = await listenLocal((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) send(res, 500, { errors: `sandbox failure: ${String(error)}` });
      });
    }, port);
    this.url = this.server.url;
  }

  public injectFaults(...faults: ShopifyFault[]): void {
    this.faults.push(...faults);
  }

  public setFaultPolicy(policy: ((op: string) => ShopifyFault | undefined) | undefined): void {
    this.policy = policy;
  }

  public reset(): void {
    // In place, so a test holding `fake.cards` keeps seeing the live list.
    this.cards.length = 0;
    this.discounts.length = 0;
    this.requests.length = 0;
    this.tokenRequests.length = 0;
    this.throttledCount = 0;
    this.faults = [];
    this.policy = undefined;
    this.bucket.reset();
    this.nextId = 1;
  }

  public revokeTokens(): void {
    this.tokens?.revokeAll();
  }

  public listening(): { address: string; port: number } {
    if (!this.server) throw new Error('the Shopify sandbox is not listening');
    return this.server.listening();
  }

  public async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // Also ends idle keep-alive sockets and held 'timeout' requests, which would otherwise keep jest alive.
    await this.server?.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, tooLarge } = await readBody(req, MAX_BODY_BYTES);
    if (tooLarge) return this.reply(res, 'other', { status: 413, body: { errors: 'Request body too large' } });
    const raw = body.toString('utf8');

    const request = parseJsonObject(raw);
    const query = typeof request?.query === 'string' ? request.query : undefined;
    const operation: Operation = !query
      ? 'other'
      : /\bgiftCardCreate\b/.test(query)
        ? 'giftCardCreate'
        : /\bgiftCards\b/.test(query)
          ? 'giftCards'
          : /\bdiscountCodeBasicCreate\b/.test(query)
            ? 'discountCodeBasicCreate'
            : /\bcodeDiscountNodeByCode\b/.test(query)
              ? 'codeDiscountNodeByCode'
              : /\bgiftCardDeactivate\b/.test(query)
                ? 'giftCardDeactivate'
                : /\bdiscountCodeDeactivate\b/.test(query)
                  ? 'discountCodeDeactivate'
                  : /\bshop\s*\{/.test(query)
                    ? 'shop'
                    : 'other';

    const path = (req.url ?? '').split('?')[0];
    if (path === '/admin/oauth/access_token' && req.method === 'POST' && this.tokens) {
      const reply = this.tokens.grant(raw, req.headers['content-type']);
      this.tokenRequests.push(reply.status);
      return send(res, reply.status, reply.body);
    }

    const route = /^\/admin\/api\/([^/]+)\/graphql\.json$/.exec(path);
    const schema = route ? adminSchema(route[1]) : undefined;
    if (req.method !== 'POST' || !route || !schema || (this.options.apiVersion && route[1] !== this.options.apiVersion)) {
      return this.reply(res, operation, { status: 404, body: { errors: 'Not Found' } });
    }
    // An expired grant token gets what any unknown token gets from Shopify: 401 and this body.
    const token = req.headers['x-shopify-access-token'];
    const presented = typeof token === 'string' ? token : undefined;
    if (presented !== this.accessToken && !this.tokens?.valid(presented)) {
      return this.reply(res, operation, { status: 401, body: UNAUTHORIZED_BODY });
    }
    if (!request || !query) {
      return this.reply(res, operation, { status: 400, body: { errors: { query: 'Required parameter missing or invalid' } } });
    }
    // Every document, whatever it asks for, is held to the version's schema before anything runs.
    const checked = checkRequest(
      schema,
      query,
      isObject(request.variables) ? request.variables : undefined,
      typeof request.operationName === 'string' ? request.operationName : undefined,
    );
    if (!checked.ok) return this.reply(res, operation, { status: 200, body: { errors: checked.errors } });

    if (this.latencyMs > 0) await this.delay(this.latencyMs);
    // Queued faults are aimed at the reward calls a test is about; the shop's currency, read once per
    // client before its first card, is not one of them (a fault policy still reaches it).
    const fault = (operation === 'shop' ? undefined : this.faults.shift()) ?? this.policy?.(operation);

    switch (fault) {
      case 'unauthorized':
        return this.reply(res, operation, { status: 401, body: UNAUTHORIZED_BODY });
      case 'http500':
        return this.reply(res, operation, { status: 500, body: { errors: 'Internal Server Error' } });
      case 'http503':
        return this.reply(res, operation, {
          status: 503,
          body: { errors: 'Service Unavailable' },
          headers: { 'Retry-After': RETRY_AFTER_SECONDS },
        });
      case 'http429':
      case 'throttled': {
        // Another app on the same store drained the shared bucket: the status it reports is real.
        this.bucket.drain();
        const reply = this.throttledReply(this.costOf(operation));
        if (fault === 'http429') {
          reply.status = 429;
          reply.headers = { 'Retry-After': RETRY_AFTER_SECONDS };
        }
        return this.reply(res, operation, reply);
      }
      case 'timeout':
        // Never answered, nothing applied; the client's abort (or close()) ends the socket.
        this.requests.push({ operation, status: 0 });
        return;
      default:
        break;
    }

    const variables = isObject(request.variables) ? request.variables : undefined;
    // Inline string literals are how codes end up in query logs and injection bugs: demand variables.
    if (operation !== 'other' && (!variables || query.includes('"'))) {
      return this.reply(res, operation, {
        status: 200,
        body: graphqlError('Sandbox requires inputs as variables, not literals in the query text', 'argumentLiteralsIncompatible'),
      });
    }

    const cost = this.costOf(operation);
    if (!this.bucket.take(cost)) return this.reply(res, operation, this.throttledReply(cost));

    if (fault === 'internal-error') {
      const body =
        operation === 'giftCardCreate'
          ? { data: { giftCardCreate: { giftCard: null, giftCardCode: null, userErrors: [internalUserError()] } } }
          : graphqlError('Internal error. Looks like something went wrong on our end.', 'INTERNAL_SERVER_ERROR');
      return this.reply(res, operation, { status: 200, body: { ...body, extensions: this.bucket.costExtension(cost, cost) } });
    }

    let data: Json;
    if (operation === 'giftCardCreate') {
      data = giftCardCreate(this.shop, variables ?? {});
    } else if (operation === 'giftCards') {
      data = giftCards(this.shop, query, variables ?? {});
    } else if (operation === 'discountCodeBasicCreate') {
      data = discountCodeBasicCreate(this.shop, variables ?? {});
    } else if (operation === 'codeDiscountNodeByCode') {
      data = codeDiscountNodeByCode(this.shop, variables ?? {});
    } else if (operation === 'giftCardDeactivate') {
      data = giftCardDeactivate(this.shop, variables ?? {});
    } else if (operation === 'discountCodeDeactivate') {
      data = discountCodeDeactivate(this.shop, variables ?? {});
    } else if (operation === 'shop') {
      data = { shop: { currencyCode: this.shop.currencyCode } };
    } else {
      return this.reply(res, operation, {
        status: 200,
        body: {
          ...graphqlError(
            'The sandbox serves only giftCardCreate, giftCards, discountCodeBasicCreate, codeDiscountNodeByCode, giftCardDeactivate, discountCodeDeactivate and shop',
            'undefinedField',
          ),
          extensions: this.bucket.costExtension(cost, cost),
        },
      });
    }

    if (fault === 'lost-response') {
      // The effect is committed; only the answer is lost, as when a connection drops after the write.
      this.requests.push({ operation, status: 0 });
      req.socket.destroy();
      return;
    }
    return this.reply(res, operation, { status: 200, body: { data, extensions: this.bucket.costExtension(cost, cost) } });
  }

  private costOf(operation: Operation): number {
    return operation === 'giftCardCreate' ||
      operation === 'discountCodeBasicCreate' ||
      operation === 'giftCardDeactivate' ||
      operation === 'discountCodeDeactivate'
      ? this.createCost
      : this.queryCost;
  }

  private throttledReply(requested: number): GraphQLReply {
    this.throttledCount++;
    return {
      status: 200,
      body: {
        errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED', documentation: 'https://shopify.dev/api/usage/rate-limits' } }],
        extensions: this.bucket.costExtension(requested, null),
      },
    };
  }

  private reply(res: ServerResponse, operation: Operation, reply: GraphQLReply): void {
    this.requests.push({ operation, status: reply.status });
    send(res, reply.status, reply.body, reply.headers);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
}

function parseJsonObject(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function internalUserError(): UserError {
  return userError('INTERNAL_ERROR', ['base'], 'An unexpected error occurred. Please try again.');
}
