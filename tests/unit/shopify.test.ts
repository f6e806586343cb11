import { PermanentError, RetryableError } from '../../lib/domain/errors';
import type { Fetch } from '../../lib/infra/http';
import { giftCardIssuer, type GiftCardIssuer } from '../../lib/adapters/shopify/gift-cards';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { failure } from '../support/failure';
import { StaticToken } from '../../lib/adapters/shopify/auth';

const TOKEN = 'shpat_unit_secret_token';
const CODE = 'REFABCD2345WXYZ';
const INPUT = { code: CODE, amount: '25.00', note: 'referral 0190a1b2-uuid' };

interface Call {
  url: string;
  init: RequestInit;
}

type Scripted = Response | Error | 'hang';

/** A fetch that answers from a script, in order, and records what it was asked. */
function scriptedFetch(...script: Scripted[]): { fetch: Fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({ url: String(input), init: init ?? {} });
    const next = script.shift();
    if (next === undefined) throw new Error('scriptedFetch: no response left');
    if (next === 'hang') {
      return new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
      });
    }
    if (next instanceof Error) throw next;
    return next;
  }) as Fetch;
  return { fetch: fetchImpl, calls };
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

function cost(requestedQueryCost: number, currentlyAvailable: number, restoreRate = 100): unknown {
  return {
    cost: { requestedQueryCost, actualQueryCost: null, throttleStatus: { maximumAvailable: 1000, currentlyAvailable, restoreRate } },
  };
}

function created(): Response {
  return json({
    data: {
      giftCardCreate: {
        giftCard: { id: 'gid://shopify/GiftCard/7', lastCharacters: 'wxyz' },
        giftCardCode: CODE.toLowerCase(),
        userErrors: [],
      },
    },
    extensions: cost(10, 990),
  });
}

function userErrors(...errors: { code: string; field?: string[]; message?: string }[]): Response {
  return json({
    data: {
      giftCardCreate: {
        giftCard: null,
        giftCardCode: null,
        userErrors: errors.map((e) => ({ field: ['input', 'code'], message: 'x', ...e })),
      },
    },
    extensions: cost(10, 990),
  });
}

const THROTTLED = { errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED' } }] };

function transport(fetchImpl: Fetch, timeoutMs?: number): ShopifyTransport {
  return new ShopifyTransport({
    baseUrl: 'https://shop.myshopify.com',
    auth: new StaticToken(TOKEN),
    apiVersion: '2025-07',
    fetch: fetchImpl,
    timeoutMs,
    now: () => 1_000,
  });
}

function client(fetchImpl: Fetch, timeoutMs?: number): GiftCardIssuer {
  return giftCardIssuer(transport(fetchImpl, timeoutMs));
}

function sentBody(call: Call): { query: string; variables: Record<string, unknown> } {
  return JSON.parse(String(call.init.body)) as { query: string; variables: Record<string, unknown> };
}

describe('giftCardIssuer: createGiftCard', () => {
  it('posts to the versioned GraphQL endpoint with the access token header', async () => {
    // Prepare
    const { fetch, calls } = scriptedFetch(created());

    // Act
    await client(fetch).createGiftCard(INPUT);

    // Assess
    expect(calls[0].url).toBe('https://shop.myshopify.com/admin/api/2025-07/graphql.json');
    expect(calls[0].init.method).toBe('POST');
    expect(calls[0].init.headers).toMatchObject({ 'X-Shopify-Access-Token': TOKEN, 'Content-Type': 'application/json' });
  });

  it('passes the code as a variable, never inside the query text', async () => {
    // Prepare
    const { fetch, calls } = scriptedFetch(created());

    // Act
    await client(fetch).createGiftCard({ ...INPUT, expiresOn: '2026-12-31' });

    // Assess
    const body = sentBody(calls[0]);
    expect(body.query).toContain('giftCardCreate(input: $input)');
    expect(body.query).not.toContain(CODE);
    expect(body.variables).toEqual({
      input: { code: CODE, initialValue: '25.00', note: INPUT.note, expiresOn: '2026-12-31' },
    });
  });

  it('returns created with the id and last characters', async () => {
    // Prepare
    const { fetch } = scriptedFetch(created());

    // Act
    const result = await client(fetch).createGiftCard(INPUT);

    // Assess
    expect(result).toEqual({ status: 'created', id: 'gid://shopify/GiftCard/7', lastCharacters: 'wxyz' });
  });

  it('returns taken when the code is already used', async () => {
    // Prepare
    const { fetch } = scriptedFetch(userErrors({ code: 'TAKEN', message: 'Code has already been taken' }));

    // Act
    const result = await client(fetch).createGiftCard(INPUT);

    // Assess
    expect(result).toEqual({ status: 'taken', sends: 1 });
  });

  it('turns INVALID into a PermanentError naming the code', async () => {
    // Prepare
    const { fetch } = scriptedFetch(userErrors({ code: 'INVALID', message: 'Code is invalid' }));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('shopify_invalid');
  });

  it('lets a validation error outrank TAKEN in the same answer', async () => {
    // Prepare
    const { fetch } = scriptedFetch(userErrors({ code: 'TAKEN' }, { code: 'GREATER_THAN', field: ['input', 'initialValue'] }));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect((error as PermanentError).reason).toBe('shopify_greater_than');
  });

  it('turns INTERNAL_ERROR into a RetryableError', async () => {
    // Prepare
    const { fetch } = scriptedFetch(userErrors({ code: 'INTERNAL_ERROR', field: ['base'] }));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('turns THROTTLED at HTTP 200 into a RetryableError timed by the bucket refill', async () => {
    // Prepare: 10 points needed, 2 available, 100 restored per second -> 80 ms
    const { fetch } = scriptedFetch(json({ ...THROTTLED, extensions: cost(10, 2) }));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(80);
  });

  it('turns THROTTLED at HTTP 429 into a RetryableError timed by the bucket refill', async () => {
    // Prepare: 10 points needed, 0 available, 50 restored per second -> 200 ms
    const { fetch } = scriptedFetch(json({ ...THROTTLED, extensions: cost(10, 0, 50) }, 429));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(200);
  });

  it('waits a second on THROTTLED without cost information', async () => {
    // Prepare
    const { fetch } = scriptedFetch(json(THROTTLED));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect((error as RetryableError).retryAfterMs).toBe(1000);
  });

  it('honours Retry-After on a 503', async () => {
    // Prepare
    const { fetch } = scriptedFetch(json({ errors: 'Service Unavailable' }, 503, { 'Retry-After': '2' }));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(2000);
  });

  it('turns a 401 into a PermanentError shopify_auth', async () => {
    // Prepare
    const { fetch } = scriptedFetch(json({ errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' }, 401));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('shopify_auth');
  });

  it('turns a 404 into a PermanentError shopify_not_found', async () => {
    // Prepare
    const { fetch } = scriptedFetch(json({ errors: 'Not Found' }, 404));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect((error as PermanentError).reason).toBe('shopify_not_found');
  });

  it('turns a missing scope (ACCESS_DENIED) into a PermanentError naming the message', async () => {
    // Prepare
    const message = 'Access denied for giftCardCreate field. Required access: `write_gift_cards` access scope.';
    const { fetch } = scriptedFetch(json({ errors: [{ message, extensions: { code: 'ACCESS_DENIED' } }] }));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect((error as PermanentError).reason).toBe('shopify_graphql');
    expect(error.message).toContain('write_gift_cards');
  });

  it('turns a network error into a RetryableError', async () => {
    // Prepare
    const { fetch } = scriptedFetch(new TypeError('fetch failed'));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('turns a request that outlives the timeout into a RetryableError', async () => {
    // Prepare
    const { fetch } = scriptedFetch('hang');

    // Act
    const error = await failure(client(fetch, 20).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error.cause as Error).name).toBe('TimeoutError');
  });

  it('turns a 200 that is not JSON into a RetryableError', async () => {
    // Prepare
    const { fetch } = scriptedFetch(new Response('<html>Bad gateway</html>', { status: 200 }));

    // Act
    const error = await failure(client(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('records the throttle status of the last response', async () => {
    // Prepare
    const { fetch } = scriptedFetch(created());
    const shop = transport(fetch);

    // Act
    await giftCardIssuer(shop).createGiftCard(INPUT);

    // Assess
    expect(shop.throttleStatus).toEqual({ currentlyAvailable: 990, maximumAvailable: 1000, restoreRate: 100, at: 1_000 });
  });
});

describe('giftCardIssuer: findGiftCardByCode', () => {
  it('searches by the bare code passed as a variable', async () => {
    // Prepare
    const { fetch, calls } = scriptedFetch(json({ data: { giftCards: { nodes: [] } }, extensions: cost(2, 998) }));

    // Act
    await client(fetch).findGiftCardByCode(CODE);

    // Assess
    const body = sentBody(calls[0]);
    expect(body.query).toContain('giftCards(first: 25, query: $query)');
    expect(body.query).not.toContain(CODE);
    expect(body.variables).toEqual({ query: CODE });
  });

  it('returns the card whose last characters match the code, ignoring case', async () => {
    // Prepare
    const nodes = [
      { id: 'gid://shopify/GiftCard/1', note: 'other', lastCharacters: 'aaaa', enabled: true },
      { id: 'gid://shopify/GiftCard/2', note: INPUT.note, lastCharacters: 'wxyz', enabled: true },
    ];
    const { fetch } = scriptedFetch(json({ data: { giftCards: { nodes } } }));

    // Act
    const found = await client(fetch).findGiftCardByCode(CODE);

    // Assess
    expect(found).toEqual({
      matches: [{ id: 'gid://shopify/GiftCard/2', note: INPUT.note, lastCharacters: 'wxyz', enabled: true }],
      complete: true,
    });
  });

  it('returns every card sharing the last characters, not only the first', async () => {
    // Prepare: a foreign card with the same last four comes first
    const nodes = [
      { id: 'gid://shopify/GiftCard/1', note: 'someone else', lastCharacters: 'WXYZ', enabled: true },
      { id: 'gid://shopify/GiftCard/2', note: INPUT.note, lastCharacters: 'wxyz', enabled: true },
    ];
    const { fetch } = scriptedFetch(json({ data: { giftCards: { nodes } } }));

    // Act
    const found = await client(fetch).findGiftCardByCode(CODE);

    // Assess
    expect(found.matches.map((match) => match.id)).toEqual(['gid://shopify/GiftCard/1', 'gid://shopify/GiftCard/2']);
  });

  it('says the look-up is incomplete when Shopify has another page', async () => {
    // Prepare
    const nodes = [{ id: 'gid://shopify/GiftCard/1', note: 'someone else', lastCharacters: 'wxyz', enabled: true }];
    const { fetch } = scriptedFetch(json({ data: { giftCards: { nodes, pageInfo: { hasNextPage: true } } } }));

    // Act
    const found = await client(fetch).findGiftCardByCode(CODE);

    // Assess
    expect(found.complete).toBe(false);
  });

  it('says the look-up is incomplete when the page came back full', async () => {
    // Prepare: 25 cards, none of them ending with the code
    const nodes = Array.from({ length: 25 }, (_, n) => ({
      id: `gid://shopify/GiftCard/${n}`,
      note: null,
      lastCharacters: 'aaaa',
      enabled: true,
    }));
    const { fetch } = scriptedFetch(json({ data: { giftCards: { nodes } } }));

    // Act
    const found = await client(fetch).findGiftCardByCode(CODE);

    // Assess
    expect(found).toEqual({ matches: [], complete: false });
  });

  it('returns no match when no card ends with the code', async () => {
    // Prepare
    const nodes = [{ id: 'gid://shopify/GiftCard/1', note: null, lastCharacters: 'aaaa', enabled: true }];
    const { fetch } = scriptedFetch(json({ data: { giftCards: { nodes } } }));

    // Act
    const found = await client(fetch).findGiftCardByCode(CODE);

    // Assess
    expect(found).toEqual({ matches: [], complete: true });
  });

  it('does not send a code that could not exist and would be read as search syntax', async () => {
    // Prepare
    const { fetch, calls } = scriptedFetch();

    // Act
    const found = await client(fetch).findGiftCardByCode('ABCD1234 OR status:enabled');

    // Assess
    expect(found).toEqual({ matches: [], complete: true });
    expect(calls).toHaveLength(0);
  });
});

describe('giftCardIssuer error messages', () => {
  it('never contain the gift-card code, the access token or an email', async () => {
    // Prepare: answers that echo the secrets back, as GraphQL coercion errors do
    const echo = `Variable $input was provided invalid value for code ("${CODE}") with ${TOKEN} for ann@example.com`;
    const responses: Scripted[] = [
      json({ errors: [{ message: echo, extensions: { code: 'INVALID_VARIABLE' } }] }),
      userErrors({ code: 'INVALID', message: echo }),
      userErrors({ code: 'INTERNAL_ERROR', message: echo }),
      json({ errors: echo }, 400),
      json({ errors: echo }, 401),
      json({ ...THROTTLED, extensions: cost(10, 0) }),
      json({ errors: echo }, 503),
      new TypeError(`connect failed ${CODE} ${TOKEN}`),
      new Response('not json', { status: 200 }),
    ];
    const { fetch } = scriptedFetch(...responses);
    const shopify = client(fetch);

    // Act
    const messages: string[] = [];
    for (let i = 0; i < responses.length; i++) messages.push((await failure(shopify.createGiftCard(INPUT))).message);

    // Assess
    expect(messages).toHaveLength(responses.length);
    for (const message of messages) {
      expect(message.toUpperCase()).not.toContain(CODE);
      expect(message).not.toContain(TOKEN);
      expect(message).not.toContain('ann@example.com');
    }
  });
});
