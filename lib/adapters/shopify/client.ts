import { PermanentError, RetryableError } from '../../domain/errors';
import { type Fetch, fetchWithTimeout, isRetryableStatus } from '../../infra/http';
import { redactText } from '../../infra/mask';
import { ShopifyPacer } from './pacing';
import { parseRetryAfter } from '../../infra/retry';
import { StaticToken, type ShopifyTokenProvider } from './auth';
import { bucketReading, classifyUserErrors, parseJson, throttleDelayMs, type GraphQLResponse, type QueryCost, type UserError } from './graphql';

export interface ShopifyClientOptions {
  /** `https://{store}.myshopify.com`, no trailing path. */
  baseUrl: string;
  /** A static Admin API token (admin-created apps); or pass `auth`. */
  accessToken?: string;
  /** Where tokens come from (lib/adapters/shopify/auth.ts); wins over `accessToken`. */
  auth?: ShopifyTokenProvider;
  apiVersion: string;
  fetch?: Fetch;
  timeoutMs?: number;
  now?: () => number;
  /**
   * Holds each request back until the shop's bucket (as last reported) covers it; see lib/adapters/shopify/pacing.ts.
   * Default: a pacer of this client's own, so every caller sharing the client shares the budget.
   * Pass one to share it between clients of the same shop, or `false` to send every request at once.
   */
  pacer?: ShopifyPacer | false;
}

export interface GiftCardInput {
  code: string;
  /** Decimal string, e.g. "25.00": a float would invite rounding on Shopify's Decimal scalar. */
  amount: string;
  note: string;
  /** YYYY-MM-DD */
  expiresOn?: string;
}

export type CreateGiftCardResult = { status: 'created'; id: string; lastCharacters: string } | { status: 'taken' };

export interface FoundGiftCard {
  id: string;
  note: string | null;
  lastCharacters: string;
  enabled?: boolean;
}

export interface ThrottleStatus {
  currentlyAvailable: number;
  maximumAvailable: number;
  restoreRate: number;
  /** When we saw it (ms, from `now`): the bucket keeps refilling after that. */
  at: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const THROTTLE_FALLBACK_MS = 1_000;

const CREATE_MUTATION = `mutation GiftCardCreate($input: GiftCardCreateInput!) {
  giftCardCreate(input: $input) {
    giftCard { id lastCharacters }
    giftCardCode
    userErrors { code field message }
  }
}`;

/**
 * A full page may hide more matches: findGiftCardByCode then says the look-up is incomplete.
 * GiftCardConnection has a non-null `pageInfo` (shopify.dev/docs/api/admin-graphql/2025-10/connections/giftcardconnection).
 */
const FIND_PAGE_SIZE = 25;

const FIND_QUERY = `query FindGiftCard($query: String!) {
  giftCards(first: ${FIND_PAGE_SIZE}, query: $query) {
    nodes { id note lastCharacters enabled }
    pageInfo { hasNextPage }
  }
}`;

const SHOP_CURRENCY_QUERY = `query ShopCurrency {
  shop { currencyCode }
}`;

/**
 * How giftCardCreate takes the amount in `apiVersion`. From 2026-07 `initialValue: Decimal` is
 * deprecated in favour of `initialAmount: MoneyInput { amount, currencyCode }` (Shopify changelog
 * "Local currency support gift cards now available in the GraphQL Admin API"; the schemas in
 * @shopify/dev-mcp show initialValue as `Decimal!` up to 2026-04 and deprecated from 2026-07).
 * Version names are dates, so they compare as strings; `unstable` is newer than any of them.
 */
export function giftCardAmountField(apiVersion: string): 'initialAmount' | 'initialValue' {
  return apiVersion === 'unstable' || apiVersion >= '2026-07' ? 'initialAmount' : 'initialValue';
}

const DISCOUNT_CREATE_MUTATION = `mutation DiscountCodeCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { code field message }
  }
}`;

const DISCOUNT_FIND_QUERY = `query FindDiscountCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount { ... on DiscountCodeBasic { title } }
  }
}`;

// giftCardDeactivate(id: ID!) → GiftCardDeactivatePayload { giftCard, userErrors [GiftCardDeactivateUserError: code
// GIFT_CARD_NOT_FOUND] }; "A deactivated gift card cannot be re-enabled" (shopify.dev, admin-graphql
// mutations/giftCardDeactivate and enums/GiftCardDeactivateUserErrorCode, 2025-01 … 2026-07).
const GIFT_CARD_DEACTIVATE_MUTATION = `mutation GiftCardDeactivate($id: ID!) {
  giftCardDeactivate(id: $id) {
    giftCard { id enabled deactivatedAt balance { amount currencyCode } }
    userErrors { code field message }
  }
}`;

// discountCodeDeactivate(id: ID!) → DiscountCodeDeactivatePayload { codeDiscountNode, userErrors [DiscountUserError] }
// (shopify.dev, admin-graphql mutations/discountCodeDeactivate; scope write_discounts).
const DISCOUNT_DEACTIVATE_MUTATION = `mutation DiscountCodeDeactivate($id: ID!) {
  discountCodeDeactivate(id: $id) {
    codeDiscountNode { id codeDiscount { ... on DiscountCodeBasic { status } } }
    userErrors { code field message }
  }
}`;

interface DeactivateData {
  giftCardDeactivate?: { giftCard?: { id?: string; enabled?: boolean; balance?: { amount?: string } | null } | null; userErrors?: UserError[] } | null;
  discountCodeDeactivate?: { codeDiscountNode?: { id?: string } | null; userErrors?: UserError[] } | null;
}

/** What revoking one reward left: for a gift card, the balance that was still on it. */
export interface DeactivatedReward {
  balanceLeft?: string;
}

export interface DiscountCodeInput {
  code: string;
  /** Fixed amount off the order, in the shop's currency. */
  amount: string;
  /** Shown in the admin and at checkout; carries the referral's event uuid so the code can be recognised. */
  title: string;
  startsAt: string;
  endsAt?: string;
}

export interface FoundDiscountCode {
  id: string;
  title: string | null;
}

interface ShopCurrencyData {
  shop?: { currencyCode?: string } | null;
}

interface DiscountCreateData {
  discountCodeBasicCreate?: { codeDiscountNode?: { id?: string } | null; userErrors?: UserError[] } | null;
}

interface DiscountFindData {
  codeDiscountNodeByCode?: { id?: string; codeDiscount?: { title?: string | null } | null } | null;
}


interface CreateData {
  giftCardCreate?: {
    giftCard?: { id?: string; lastCharacters?: string } | null;
    userErrors?: UserError[];
  } | null;
}

interface FindData {
  giftCards?: {
    nodes?: FoundGiftCard[];
    edges?: { node: FoundGiftCard }[];
    pageInfo?: { hasNextPage?: boolean } | null;
  } | null;
}

/**
 * Shopify GraphQL Admin API, gift cards only. Each method makes exactly one request and maps
 * every outcome onto created/taken/found or a RetryableError/PermanentError, so the retry policy
 * lives with the caller (withRetry) rather than being split between here and there.
 */
export class ShopifyClient {
  private readonly endpoint: string;
  private readonly auth: ShopifyTokenProvider;
  private readonly amountField: 'initialAmount' | 'initialValue';
  private readonly fetchImpl: Fetch;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly requestPacer?: ShopifyPacer;
  private lastThrottleStatus?: ThrottleStatus;
  private currency?: Promise<string>;
  /** The last tokens sent: an error message echoing one must not carry it into a log. */
  private readonly sentTokens: string[] = [];

  public constructor(options: ShopifyClientOptions) {
    this.endpoint = `${options.baseUrl.replace(/\/+$/, '')}/admin/api/${options.apiVersion}/graphql.json`;
    if (!options.auth && options.accessToken === undefined) throw new Error('ShopifyClient needs accessToken or auth');
    this.auth = options.auth ?? new StaticToken(options.accessToken ?? '');
    this.amountField = giftCardAmountField(options.apiVersion);
    this.fetchImpl = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    // The pacer keeps its own clock: `now` may be frozen (tests), and the pacer must see time pass.
    this.requestPacer = options.pacer === false ? undefined : (options.pacer ?? new ShopifyPacer());
  }

  /** The pacer this client's requests wait on, if pacing is on. */
  public get pacer(): ShopifyPacer | undefined {
    return this.requestPacer;
  }

  /** The bucket as of the last response, so a caller can pace itself before being throttled. */
  public get throttleStatus(): ThrottleStatus | undefined {
    return this.lastThrottleStatus;
  }

  public async createGiftCard(input: GiftCardInput): Promise<CreateGiftCardResult> {
    const amount =
      this.amountField === 'initialAmount'
        ? { initialAmount: { amount: input.amount, currencyCode: await this.shopCurrency() } }
        : { initialValue: input.amount };
    const variables = {
      input: {
        code: input.code,
        ...amount,
        note: input.note,
        ...(input.expiresOn ? { expiresOn: input.expiresOn } : {}),
      },
    };
    const secrets = [input.code];
    const data = await this.request<CreateData>('giftCardCreate', CREATE_MUTATION, variables, secrets);
    const payload = data.giftCardCreate;
    if (!payload) throw new RetryableError('shopify giftCardCreate: response without a payload');

    const userErrors = payload.userErrors ?? [];
    if (userErrors.length > 0) {
      return classifyUserErrors('giftCardCreate', userErrors, input.code, (message) => redactText(message, secrets, this.sentTokens));
    }

    const card = payload.giftCard;
    if (!card?.id || typeof card.lastCharacters !== 'string') {
      // Retrying is safe: the code is ours and fixed, so a second attempt answers TAKEN if this one landed.
      throw new RetryableError('shopify giftCardCreate: response without a gift card');
    }
    return { status: 'created', id: card.id, lastCharacters: card.lastCharacters };
  }

  /**
   * Shopify never returns a full code after creation, so "is this code ours?" is answered by
   * searching it and keeping EVERY card whose last four characters match: several cards may share
   * them, and the caller picks ours by its note. `complete` is false when the page came back full
   * (more cards may match than were returned), so the caller never takes "not among these" for
   * "not ours".
   */
  public async findGiftCardByCode(code: string): Promise<{ matches: FoundGiftCard[]; complete: boolean }> {
    // Shopify accepts only letters and digits in codes, so anything else cannot exist; refusing it
    // here also keeps search syntax (spaces, colons, OR) from turning the look-up into another query.
    if (!/^[A-Za-z0-9]+$/.test(code)) return { matches: [], complete: true };

    // The documented default search field of giftCards is the code; there is no `code:` filter.
    const data = await this.request<FindData>('giftCards', FIND_QUERY, { query: code }, [code]);
    const connection = data.giftCards;
    const nodes = connection?.nodes ?? connection?.edges?.map((edge) => edge.node) ?? [];
    const last4 = code.slice(-4).toLowerCase();
    const matches = nodes
      .filter((node) => typeof node.lastCharacters === 'string' && node.lastCharacters.toLowerCase() === last4)
      .map((node) => ({ id: node.id, note: node.note ?? null, lastCharacters: node.lastCharacters, enabled: node.enabled }));
    return { matches, complete: connection?.pageInfo?.hasNextPage !== true && nodes.length < FIND_PAGE_SIZE };
  }

  /**
   * A single-use, fixed-amount discount code for the whole order: the reward for shops that
   * cannot get the gift-card scopes. Usage limit 1 and once per customer, so it pays out once.
   */
  public async createDiscountCode(input: DiscountCodeInput): Promise<CreateGiftCardResult> {
    const variables = {
      basicCodeDiscount: {
        title: input.title,
        code: input.code,
        startsAt: input.startsAt,
        ...(input.endsAt ? { endsAt: input.endsAt } : {}),
        context: { all: 'ALL' },
        customerGets: {
          value: { discountAmount: { amount: input.amount, appliesOnEachItem: false } },
          items: { all: true },
        },
        usageLimit: 1,
        appliesOncePerCustomer: true,
      },
    };
    const secrets = [input.code];
    const data = await this.request<DiscountCreateData>('discountCodeBasicCreate', DISCOUNT_CREATE_MUTATION, variables, secrets);
    const payload = data.discountCodeBasicCreate;
    if (!payload) throw new RetryableError('shopify discountCodeBasicCreate: response without a payload');
    const userErrors = payload.userErrors ?? [];
    if (userErrors.length > 0) {
      return classifyUserErrors('discountCodeBasicCreate', userErrors, input.code, (message) => redactText(message, secrets, this.sentTokens));
    }
    const id = payload.codeDiscountNode?.id;
    if (!id) throw new RetryableError('shopify discountCodeBasicCreate: response without a discount');
    return { status: 'created', id, lastCharacters: input.code.slice(-4) };
  }

  /** Discount codes, unlike gift cards, can be read back by code; the title says whose it is. */
  public async findDiscountCodeByCode(code: string): Promise<FoundDiscountCode | undefined> {
    if (!/^[A-Za-z0-9]+$/.test(code)) return undefined;
    const data = await this.request<DiscountFindData>('codeDiscountNodeByCode', DISCOUNT_FIND_QUERY, { code }, [code]);
    const node = data.codeDiscountNodeByCode;
    if (!node?.id) return undefined;
    return { id: node.id, title: node.codeDiscount?.title ?? null };
  }

  /** Deactivates a gift card (for good) or a discount code, by the id creation returned; repeating it is harmless. */
  public async deactivateReward(id: string): Promise<DeactivatedReward> {
    const giftCard = id.startsWith('gid://shopify/GiftCard/');
    const operation = giftCard ? 'giftCardDeactivate' : 'discountCodeDeactivate';
    const data = await this.request<DeactivateData>(operation, giftCard ? GIFT_CARD_DEACTIVATE_MUTATION : DISCOUNT_DEACTIVATE_MUTATION, { id }, []);
    const payload = giftCard ? data.giftCardDeactivate : data.discountCodeDeactivate;
    if (!payload) throw new RetryableError(`shopify ${operation}: response without a payload`);
    const errors = payload.userErrors ?? [];
    if (errors.some((e) => e.code === 'INTERNAL_ERROR')) throw new RetryableError(`shopify ${operation}: INTERNAL_ERROR`);
    if (errors.length > 0) {
      const first = errors[0] as UserError;
      throw new PermanentError(`shopify_${(first.code ?? 'user_error').toLowerCase()}`, `shopify ${operation} ${id} refused: ${redactText(first.message ?? '', [], this.sentTokens)}`);
    }
    if (giftCard) {
      const card = data.giftCardDeactivate?.giftCard;
      if (card?.enabled !== false) throw new RetryableError(`shopify ${operation}: the card is not reported deactivated`);
      return { balanceLeft: card.balance?.amount };
    }
    if (!data.discountCodeDeactivate?.codeDiscountNode?.id) throw new RetryableError(`shopify ${operation}: response without the discount`);
    return {};
  }

  /**
   * The shop's currency, read once per client (so once per container) and only for versions that
   * take `initialAmount`. Read rather than configured: REWARD_AMOUNT is "in the shop's currency",
   * and a card issued in another currency is, by default, not redeemable across currencies
   * (crossCurrencyRedemptionStrategy NONE, Shopify's GiftCardCreateInput docs for 2026-10).
   */
  public shopCurrency(): Promise<string> {
    this.currency ??= this.request<ShopCurrencyData>('shop', SHOP_CURRENCY_QUERY, {}, []).then((data) => {
      const code = data.shop?.currencyCode;
      if (typeof code !== 'string' || !/^[A-Z]{3}$/.test(code)) throw new RetryableError('shopify shop: response without a currency code');
      return code;
    });
    // A failed read is not cached: the next card asks again.
    this.currency.catch(() => {
      this.currency = undefined;
    });
    return this.currency;
  }

  private async request<T>(
    operation: string,
    query: string,
    variables: Record<string, unknown>,
    secrets: string[],
    renewed = false,
  ): Promise<T> {
    const what = `shopify ${operation}`;
    // Before the pacer: waiting for a token must not hold a reservation of the shop's budget.
    const accessToken = await this.auth.token();
    if (!this.sentTokens.includes(accessToken)) {
      this.sentTokens.unshift(accessToken);
      this.sentTokens.length = Math.min(this.sentTokens.length, 2);
    }
    const pacer = this.requestPacer;
    const permit = await pacer?.acquire(operation);
    let response: Response;
    let body: GraphQLResponse<T> | undefined;
    let cost: QueryCost | undefined;
    try {
      response = await fetchWithTimeout(
        this.fetchImpl,
        this.endpoint,
        {
          method: 'POST',
          headers: {
            'X-Shopify-Access-Token': accessToken,
            'Content-Type': 'application/json',
            Accept: 'application/json',
          },
          body: JSON.stringify({ query, variables }),
          // A redirected POST comes back as a GET to somewhere else: surface it instead.
          redirect: 'manual',
        },
        this.timeoutMs,
        what,
      );

      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        // The connection dropped or timed out mid-body: the mutation may have been applied.
        throw new RetryableError(`${what}: response body lost (HTTP ${response.status})`, { cause: error });
      }
      body = parseJson<GraphQLResponse<T>>(text);
      cost = body?.extensions?.cost;
    } finally {
      // Every outcome ends the reservation; no reading means the points count as spent.
      if (pacer && permit) pacer.settle(permit, bucketReading(cost));
    }
    this.recordThrottleStatus(cost);

    const status = response.status;
    const errors = Array.isArray(body?.errors) ? body.errors : [];
    const scrub = (message: string): string => redactText(message, secrets, [accessToken]);

    // Whether THROTTLED arrives with 200 or 429 is unconfirmed; the body decides, not the status.
    if ((status === 200 || status === 429) && errors.some((e) => e.extensions?.code === 'THROTTLED')) {
      const retryAfterMs =
        throttleDelayMs(cost) ?? parseRetryAfter(response.headers.get('retry-after'), this.now()) ?? THROTTLE_FALLBACK_MS;
      throw new RetryableError(`${what}: throttled (HTTP ${status})`, { retryAfterMs });
    }
    if (status === 401 && !renewed && this.auth.rejected(accessToken)) {
      // The token expired or was revoked: renew once and send the same request again. Shopify
      // checks the token before it runs anything, and even if it had run a giftCardCreate, that
      // is safe to repeat only because the code is persisted in the ledger first: a second
      // create answers TAKEN and the caller resolves it by looking the code up (lib/domain/rewards.ts).
      return this.request<T>(operation, query, variables, secrets, true);
    }
    if (status === 401 || status === 403) {
      const which = this.auth.mode === 'static' ? 'SHOPIFY_ACCESS_TOKEN' : 'a freshly granted token';
      throw new PermanentError('shopify_auth', `${what}: HTTP ${status}, ${which} rejected or missing scope`);
    }
    if (status === 404) {
      throw new PermanentError('shopify_not_found', `${what}: HTTP 404, check the store domain and API version`);
    }
    if (isRetryableStatus(status)) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.now());
      throw new RetryableError(`${what}: HTTP ${status}`, { retryAfterMs });
    }
    if (status < 200 || status >= 300) {
      // 400 (malformed request), 402 (shop frozen), 423 (shop locked): retrying will not change them.
      const detail = typeof body?.errors === 'string' ? `: ${scrub(body.errors)}` : '';
      throw new PermanentError(`shopify_http_${status}`, `${what}: HTTP ${status}${detail}`);
    }
    if (!body || typeof body !== 'object') {
      // A proxy or an outage page, not Shopify's API answering.
      throw new RetryableError(`${what}: HTTP ${status} with a body that is not JSON`);
    }
    if (errors.length > 0) {
      const messages = scrub(errors.map((e) => e.message ?? e.extensions?.code ?? 'unknown error').join('; '));
      // INTERNAL_SERVER_ERROR is Shopify's own transient failure, not a fault of the request.
      if (errors.every((e) => e.extensions?.code === 'INTERNAL_SERVER_ERROR')) {
        throw new RetryableError(`${what}: Shopify internal error: ${messages}`);
      }
      throw new PermanentError('shopify_graphql', `${what}: GraphQL error: ${messages}`);
    }
    if (body.errors !== undefined && body.errors !== null && !Array.isArray(body.errors)) {
      throw new PermanentError('shopify_graphql', `${what}: GraphQL error: ${scrub(JSON.stringify(body.errors))}`);
    }
    if (!body.data) throw new RetryableError(`${what}: response without data`);
    return body.data;
  }

  private recordThrottleStatus(cost: QueryCost | undefined): void {
    const t = cost?.throttleStatus;
    if (!t || typeof t.currentlyAvailable !== 'number') return;
    this.lastThrottleStatus = {
      currentlyAvailable: t.currentlyAvailable,
      maximumAvailable: t.maximumAvailable ?? 0,
      restoreRate: t.restoreRate ?? 0,
      at: this.now(),
    };
  }
}

/**
 * Every GraphQL document this client sends, by operation name: tests/unit/shopify-schema.test.ts
 * validates each against Shopify's published schema, and the sandbox shop validates what it gets.
 */
export const SHOPIFY_DOCUMENTS = {
  GiftCardCreate: CREATE_MUTATION,
  FindGiftCard: FIND_QUERY,
  DiscountCodeCreate: DISCOUNT_CREATE_MUTATION,
  FindDiscountCode: DISCOUNT_FIND_QUERY,
  ShopCurrency: SHOP_CURRENCY_QUERY,
  GiftCardDeactivate: GIFT_CARD_DEACTIVATE_MUTATION,
  DiscountCodeDeactivate: DISCOUNT_DEACTIVATE_MUTATION,
} as const;
