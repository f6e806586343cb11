import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { SandboxTokens, type SandboxAppCredentials } from './shopify-oauth';
import { adminSchema, checkRequest } from './shopify-schema';

/**
 * A fake Shopify GraphQL Admin API for gift cards, on 127.0.0.1. It enforces what the real one
 * does and the client depends on (auth, variables, code rules, case-insensitive uniqueness, the
 * leaky bucket, codes never readable back) and can inject the failures exactly-once must survive,
 * including the nasty one: a mutation applied whose response never arrives. Every request is
 * checked against Shopify's published schema of the version in its URL (./shopify-schema.ts), so
 * the sandbox never accepts a document the real shop would refuse; and it speaks the client
 * credentials grant (./shopify-oauth.ts) with tokens that expire.
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

export interface FakeGiftCard {
  /** gid://shopify/GiftCard/<n> */
  id: string;
  /** stored uppercase: codes are not case sensitive */
  code: string;
  initialValue: string;
  currencyCode: string;
  note: string | null;
  expiresOn: string | null;
  createdAt: string;
  /** false once giftCardDeactivate ran (for good: Shopify cannot re-enable a card). */
  enabled?: boolean;
  deactivatedAt?: string | null;
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

type Operation = 'giftCardCreate' | 'giftCards' | 'discountCodeBasicCreate' | 'codeDiscountNodeByCode' | 'giftCardDeactivate' | 'discountCodeDeactivate' | 'shop' | 'other';

/** A single-use discount code, as discountCodeBasicCreate made it. */
export interface FakeDiscountCode {
  id: string;
  /** stored uppercase: codes are not case sensitive */
  code: string;
  title: string;
  amount: string;
  usageLimit: number | null;
  appliesOncePerCustomer: boolean;
  endsAt: string | null;
  /** ACTIVE, or EXPIRED once discountCodeDeactivate ran. */
  status?: 'ACTIVE' | 'EXPIRED';
}

export interface FakeShopify {
  url: string;
  /** The worker settings that point at this fake: its static token, or its app's client credentials. */
  readonly env: { SHOPIFY_BASE_URL: string } & ({ SHOPIFY_ACCESS_TOKEN: string } | { SHOPIFY_CLIENT_ID: string; SHOPIFY_CLIENT_SECRET: string });
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
  close(): Promise<void>;
}

const UNAUTHORIZED_BODY = { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' };
const MAX_BODY_BYTES = 1_000_000;
const MAX_INITIAL_VALUE = 2000;
const RETRY_AFTER_SECONDS = '1';

type Json = Record<string, unknown>;

interface GraphQLReply {
  status: number;
  body: Json;
  headers?: Record<string, string>;
}

interface UserError {
  code: string;
  field: string[];
  message: string;
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

  private readonly server: Server;
  private readonly accessToken: string;
  private readonly bucketSize: number;
  private readonly restoreRate: number;
  private readonly createCost: number;
  private readonly queryCost: number;
  private readonly latencyMs: number;
  private readonly currencyCode: string;
  private faults: ShopifyFault[] = [];
  private policy?: (op: string) => ShopifyFault | undefined;
  private available: number;
  private refilledAt = Date.now();
  private nextId = 1;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly tokens?: SandboxTokens;

  public constructor(private readonly options: FakeShopifyOptions) {
    this.accessToken = options.accessToken ?? 'shpat_sandbox';
    this.bucketSize = options.bucket?.size ?? 1000;
    this.restoreRate = options.bucket?.restoreRate ?? 100;
    this.createCost = options.createCost ?? 10;
    this.queryCost = options.queryCost ?? 2;
    this.latencyMs = options.latencyMs ?? 0;
    this.currencyCode = options.currencyCode ?? 'USD';
    this.available = this.bucketSize;
    this.tokens = options.clientCredentials ? new SandboxTokens(options.clientCredentials) : undefined;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) send(res, 500, { errors: `sandbox failure: ${String(error)}` });
      });
    });
  }

  public listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        const { port: bound } = this.server.address() as AddressInfo;
        this.url = `http://127.0.0.1:${bound}`;
        resolve();
      });
    });
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
    this.available = this.bucketSize;
    this.refilledAt = Date.now();
    this.nextId = 1;
  }

  public revokeTokens(): void {
    this.tokens?.revokeAll();
  }

  public close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    return new Promise((resolve, reject) => {
      this.server.close((error) => (error ? reject(error) : resolve()));
      // Idle keep-alive sockets and held 'timeout' requests would otherwise keep jest alive.
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (raw === undefined) return this.reply(res, 'other', { status: 413, body: { errors: 'Request body too large' } });

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
        this.refill();
        this.available = 0;
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
    this.refill();
    if (this.available < cost) return this.reply(res, operation, this.throttledReply(cost));
    this.available -= cost;

    if (fault === 'internal-error') {
      const body =
        operation === 'giftCardCreate'
          ? { data: { giftCardCreate: { giftCard: null, giftCardCode: null, userErrors: [internalUserError()] } } }
          : graphqlError('Internal error. Looks like something went wrong on our end.', 'INTERNAL_SERVER_ERROR');
      return this.reply(res, operation, { status: 200, body: { ...body, extensions: this.costExtension(cost, cost) } });
    }

    let data: Json;
    if (operation === 'giftCardCreate') {
      data = this.giftCardCreate(variables ?? {});
    } else if (operation === 'giftCards') {
      data = this.giftCards(query, variables ?? {});
    } else if (operation === 'discountCodeBasicCreate') {
      data = this.discountCodeBasicCreate(variables ?? {});
    } else if (operation === 'codeDiscountNodeByCode') {
      data = this.codeDiscountNodeByCode(variables ?? {});
    } else if (operation === 'giftCardDeactivate' || operation === 'discountCodeDeactivate') {
      data = this.deactivate(operation, variables ?? {});
    } else if (operation === 'shop') {
      data = { shop: { currencyCode: this.currencyCode } };
    } else {
      return this.reply(res, operation, {
        status: 200,
        body: { ...graphqlError('The sandbox serves only giftCardCreate, giftCards, discountCodeBasicCreate, codeDiscountNodeByCode, giftCardDeactivate, discountCodeDeactivate and shop', 'undefinedField'), extensions: this.costExtension(cost, cost) },
      });
    }

    if (fault === 'lost-response') {
      // The effect is committed; only the answer is lost, as when a connection drops after the write.
      this.requests.push({ operation, status: 0 });
      req.socket.destroy();
      return;
    }
    return this.reply(res, operation, { status: 200, body: { data, extensions: this.costExtension(cost, cost) } });
  }

  private giftCardCreate(variables: Json): Json {
    const input = isObject(variables.input) ? variables.input : undefined;
    if (!input) return createPayload(null, null, [userError('MISSING_ARGUMENT', ['input'], 'Input is required')]);

    const code = input.code === undefined || input.code === null ? generateCode() : input.code;
    const errors: UserError[] = [];
    if (typeof code !== 'string') {
      errors.push(userError('INVALID', ['input', 'code'], 'Code is invalid'));
    } else if (code.length < 8) {
      errors.push(userError('TOO_SHORT', ['input', 'code'], 'Code is too short (minimum is 8 characters)'));
    } else if (code.length > 20) {
      errors.push(userError('TOO_LONG', ['input', 'code'], 'Code is too long (maximum is 20 characters)'));
    } else if (!/^[A-Za-z0-9]+$/.test(code)) {
      errors.push(userError('INVALID', ['input', 'code'], 'Code can only contain letters and numbers'));
    }

    // From 2026-07 the amount is `initialAmount: MoneyInput` (initialValue deprecated, still accepted).
    const money = isObject(input.initialAmount) ? input.initialAmount : undefined;
    const amountField = money ? 'initialAmount' : 'initialValue';
    const amount = parseDecimal(money ? money.amount : input.initialValue);
    const currencyCode = money && typeof money.currencyCode === 'string' ? money.currencyCode : this.currencyCode;
    if (amount === undefined) {
      errors.push(userError('INVALID', ['input', amountField], 'Initial value is invalid'));
    } else if (amount <= 0) {
      errors.push(userError('GREATER_THAN', ['input', amountField], 'Initial value must be greater than 0'));
    } else if (amount > MAX_INITIAL_VALUE) {
      // Shopify documents this code for "value exceeds the allowed limits" (API-issued cards cap at 2,000).
      errors.push(userError('GIFT_CARD_LIMIT_EXCEEDED', ['input', amountField], `Initial value must be at most ${MAX_INITIAL_VALUE}`));
    }

    const expiresOn = input.expiresOn ?? null;
    if (expiresOn !== null && !(typeof expiresOn === 'string' && isIsoDate(expiresOn))) {
      errors.push(userError('INVALID', ['input', 'expiresOn'], 'Expires on is invalid'));
    }
    const note = input.note ?? null;
    if (note !== null && typeof note !== 'string') errors.push(userError('INVALID', ['input', 'note'], 'Note is invalid'));

    if (errors.length === 0 && typeof code === 'string') {
      const upper = code.toUpperCase();
      if (this.cards.some((card) => card.code === upper)) {
        errors.push(userError('TAKEN', ['input', 'code'], 'Code has already been taken'));
      }
    }
    if (errors.length > 0 || typeof code !== 'string' || amount === undefined) return createPayload(null, null, errors);

    const card: FakeGiftCard = {
      id: `gid://shopify/GiftCard/${this.nextId++}`,
      code: code.toUpperCase(),
      initialValue: amount.toFixed(2),
      currencyCode,
      note: note as string | null,
      expiresOn: expiresOn as string | null,
      createdAt: new Date().toISOString(),
    };
    this.cards.push(card);
    this.options.onCard?.(card);
    return createPayload(
      {
        id: card.id,
        lastCharacters: card.code.slice(-4),
        initialValue: { amount: card.initialValue, currencyCode: card.currencyCode },
        note: card.note,
        expiresOn: card.expiresOn,
      },
      card.code,
      [],
    );
  }

  private discountCodeBasicCreate(variables: Json): Json {
    const input = isObject(variables.basicCodeDiscount) ? variables.basicCodeDiscount : undefined;
    const payload = (errors: UserError[], id?: string): Json => ({
      discountCodeBasicCreate: { codeDiscountNode: id ? { id } : null, userErrors: errors },
    });
    if (!input) return payload([userError('MISSING_ARGUMENT', ['basicCodeDiscount'], 'Input is required')]);
    const errors: UserError[] = [];
    const code = input.code;
    if (typeof code !== 'string' || !/^[A-Za-z0-9]{1,255}$/.test(code)) {
      errors.push(userError('INVALID', ['basicCodeDiscount', 'code'], 'Code is invalid'));
    }
    if (typeof input.title !== 'string' || input.title === '') {
      errors.push(userError('BLANK', ['basicCodeDiscount', 'title'], "Title can't be blank"));
    }
    if (!isObject(input.context) && !isObject(input.customerSelection)) {
      errors.push(userError('MISSING_ARGUMENT', ['basicCodeDiscount', 'context'], 'Context is required'));
    }
    const customerGets = isObject(input.customerGets) ? input.customerGets : undefined;
    const value = customerGets && isObject(customerGets.value) ? customerGets.value : undefined;
    const discountAmount = value && isObject(value.discountAmount) ? value.discountAmount : undefined;
    const amount = parseDecimal(discountAmount?.amount);
    if (amount === undefined || amount <= 0) {
      errors.push(userError('GREATER_THAN', ['basicCodeDiscount', 'customerGets', 'value', 'discountAmount', 'amount'], 'Amount must be greater than 0'));
    }
    if (errors.length === 0 && typeof code === 'string' && this.discounts.some((d) => d.code === code.toUpperCase())) {
      errors.push(userError('TAKEN', ['basicCodeDiscount', 'code'], 'Code must be unique. Please try a different code.'));
    }
    if (errors.length > 0 || typeof code !== 'string' || amount === undefined) return payload(errors);
    const discount: FakeDiscountCode = {
      id: `gid://shopify/DiscountCodeNode/${this.nextId++}`,
      code: code.toUpperCase(),
      title: input.title as string,
      amount: amount.toFixed(2),
      usageLimit: typeof input.usageLimit === 'number' ? input.usageLimit : null,
      appliesOncePerCustomer: input.appliesOncePerCustomer === true,
      endsAt: typeof input.endsAt === 'string' ? input.endsAt : null,
    };
    this.discounts.push(discount);
    return payload([], discount.id);
  }

  private codeDiscountNodeByCode(variables: Json): Json {
    const wanted = typeof variables.code === 'string' ? variables.code.toUpperCase() : undefined;
    const found = this.discounts.find((d) => d.code === wanted);
    return {
      codeDiscountNodeByCode: found ? { id: found.id, codeDiscount: { __typename: 'DiscountCodeBasic', title: found.title } } : null,
    };
  }

  /**
   * giftCardDeactivate(id: ID!) / discountCodeDeactivate(id: ID!): the card is disabled for good
   * (balance kept, reported), the discount EXPIRED. Repeating it answers the same again. Unknown
   * ids: GIFT_CARD_NOT_FOUND, or a DiscountUserError, as Shopify's schema names them.
   */
  private deactivate(operation: 'giftCardDeactivate' | 'discountCodeDeactivate', variables: Json): Json {
    const id = typeof variables.id === 'string' ? variables.id : undefined;
    if (operation === 'giftCardDeactivate') {
      const card = this.cards.find((c) => c.id === id);
      if (!card) return { giftCardDeactivate: { giftCard: null, userErrors: [userError('GIFT_CARD_NOT_FOUND', ['id'], 'Gift card not found')] } };
      if (card.enabled !== false) this.options.onDeactivate?.({ id: card.id, code: card.code, kind: 'gift card' });
      card.enabled = false;
      card.deactivatedAt ??= new Date().toISOString();
      const balance = { amount: card.initialValue, currencyCode: card.currencyCode };
      return { giftCardDeactivate: { giftCard: { id: card.id, enabled: false, deactivatedAt: card.deactivatedAt, balance }, userErrors: [] } };
    }
    const discount = this.discounts.find((d) => d.id === id);
    if (!discount) return { discountCodeDeactivate: { codeDiscountNode: null, userErrors: [userError('INVALID', ['id'], 'Code discount does not exist')] } };
    if (discount.status !== 'EXPIRED') this.options.onDeactivate?.({ id: discount.id, code: discount.code, kind: 'discount code' });
    discount.status = 'EXPIRED';
    return { discountCodeDeactivate: { codeDiscountNode: { id: discount.id, codeDiscount: { __typename: 'DiscountCodeBasic', status: 'EXPIRED' } }, userErrors: [] } };
  }

  private giftCards(query: string, variables: Json): Json {
    const first = readIntArgument(query, 'first', variables) ?? 50;
    const searchVariable = /\bquery\s*:\s*\$(\w+)/.exec(query)?.[1];
    const search = searchVariable ? variables[searchVariable] : undefined;
    const wanted = typeof search === 'string' ? parseCodeSearch(search) : undefined;

    const matches = this.cards.filter((card) => wanted === undefined || card.code === wanted).slice(0, Math.max(0, first));
    // Like Shopify, reads never expose the full code: only the last four characters.
    const nodes = matches.map((card) => ({ id: card.id, note: card.note, lastCharacters: card.code.slice(-4), enabled: card.enabled !== false }));
    const connection: Json = {};
    if (/\bedges\b/.test(query)) connection.edges = nodes.map((node) => ({ node }));
    if (/\bnodes\b/.test(query) || !connection.edges) connection.nodes = nodes;
    return { giftCards: connection };
  }

  private costOf(operation: Operation): number {
    return operation === 'giftCardCreate' || operation === 'discountCodeBasicCreate' || operation === 'giftCardDeactivate' || operation === 'discountCodeDeactivate'
      ? this.createCost
      : this.queryCost;
  }

  /** Leaky bucket: it refills continuously, so the level is computed from the time since the last look. */
  private refill(): void {
    const now = Date.now();
    this.available = Math.min(this.bucketSize, this.available + ((now - this.refilledAt) / 1000) * this.restoreRate);
    this.refilledAt = now;
  }

  private throttledReply(requested: number): GraphQLReply {
    this.throttledCount++;
    return {
      status: 200,
      body: {
        errors: [
          { message: 'Throttled', extensions: { code: 'THROTTLED', documentation: 'https://shopify.dev/api/usage/rate-limits' } },
        ],
        extensions: this.costExtension(requested, null),
      },
    };
  }

  private costExtension(requested: number, actual: number | null): Json {
    return {
      cost: {
        requestedQueryCost: requested,
        actualQueryCost: actual,
        throttleStatus: {
          maximumAvailable: this.bucketSize,
          currentlyAvailable: Math.floor(this.available),
          restoreRate: this.restoreRate,
        },
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
  if (res.destroyed) return;
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/** undefined when over the size limit. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJsonObject(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function graphqlError(message: string, code: string): Json {
  return { errors: [{ message, extensions: { code } }] };
}

function userError(code: string, field: string[], message: string): UserError {
  return { code, field, message };
}

function internalUserError(): UserError {
  return userError('INTERNAL_ERROR', ['base'], 'An unexpected error occurred. Please try again.');
}

function createPayload(giftCard: Json | null, giftCardCode: string | null, userErrors: UserError[]): Json {
  return { giftCardCreate: { giftCard, giftCardCode, userErrors } };
}

/** Shopify's Decimal scalar arrives as a string (or a number from lax clients). */
function parseDecimal(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || !/^-?\d+(\.\d+)?$/.test(value.trim())) return undefined;
  return Number(value);
}

function isIsoDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
}

/**
 * The code a giftCards search asks for, uppercase. Shopify's documented default search field is
 * the code (a bare term); `code:<code>` is accepted too so a client using either is served.
 */
function parseCodeSearch(search: string): string | undefined {
  const term = search.trim();
  if (term === '') return undefined;
  const fielded = /^code:\s*"?([^"\s]+)"?$/i.exec(term);
  return (fielded ? fielded[1] : term.replace(/^"|"$/g, '')).toUpperCase();
}

/** An Int argument given either inline (`first: 5`) or as a variable (`first: $n`). */
function readIntArgument(query: string, name: string, variables: Json): number | undefined {
  const match = new RegExp(`\\b${name}\\s*:\\s*(?:(\\d+)|\\$(\\w+))`).exec(query);
  if (!match) return undefined;
  const value = match[1] !== undefined ? Number(match[1]) : variables[match[2]];
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}

function generateCode(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}
