import { PermanentError, RetryableError } from '../../lib/domain/errors';
import { giftCardIssuer, type GiftCardIssuer } from '../../lib/adapters/shopify/gift-cards';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { startFakeShopify, type FakeShopify } from '../../local/sandbox/shopify';
import { failure } from '../support/failure';
import { StaticToken } from '../../lib/adapters/shopify/auth';

// An older version still supported on 2026-12-01 (the sandbox serves only versions with a published schema).
const API_VERSION = '2026-04';

describe('the Shopify gift-card issuer against the fake Shopify', () => {
  let shopify: FakeShopify;

  beforeAll(async () => {
    shopify = await startFakeShopify({ port: 0, apiVersion: API_VERSION, bucket: { size: 25, restoreRate: 10 } });
  });

  afterEach(() => shopify.reset());

  afterAll(async () => {
    await shopify.close();
  });

  function client(accessToken = 'shpat_sandbox'): GiftCardIssuer {
    return giftCardIssuer(
      new ShopifyTransport({ baseUrl: shopify.url, auth: new StaticToken(accessToken), apiVersion: API_VERSION, timeoutMs: 2_000 }),
    );
  }

  it('answers taken for a code reused in another case, and the look-up finds our note', async () => {
    // Prepare
    const rewards = client();
    await rewards.createGiftCard({ code: 'RefCode2345Abcd', amount: '25.00', note: 'event-uuid-1' });

    // Act
    const second = await rewards.createGiftCard({ code: 'REFCODE2345ABCD', amount: '25.00', note: 'event-uuid-2' });
    const found = await rewards.findGiftCardByCode('refcode2345abcd');

    // Assess
    expect(second).toEqual({ status: 'taken', sends: 1 });
    expect(found.matches).toMatchObject([{ note: 'event-uuid-1', lastCharacters: 'ABCD', enabled: true }]);
    expect(shopify.cards).toHaveLength(1);
  });

  it('refuses an invalid code permanently and keeps nothing', async () => {
    // Act
    const error = await failure(client().createGiftCard({ code: 'BAD-CODE-1', amount: '25.00', note: 'n' }));

    // Assess
    expect((error as PermanentError).reason).toBe('shopify_invalid');
    expect(shopify.cards).toHaveLength(0);
  });

  it('throttles once the bucket is empty and reports its status', async () => {
    // Prepare: 25 points hold two creates at 10 each; pacing off, or the client would wait instead
    const transport = new ShopifyTransport({
      baseUrl: shopify.url,
      auth: new StaticToken('shpat_sandbox'),
      apiVersion: API_VERSION,
      timeoutMs: 2_000,
      pacer: false,
    });
    const rewards = giftCardIssuer(transport);
    await rewards.createGiftCard({ code: 'BUCKET000001', amount: '5.00', note: 'n' });
    await rewards.createGiftCard({ code: 'BUCKET000002', amount: '5.00', note: 'n' });

    // Act
    const error = await failure(rewards.createGiftCard({ code: 'BUCKET000003', amount: '5.00', note: 'n' }));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBeGreaterThan(0);
    expect(shopify.throttledCount).toBe(1);
    expect(transport.throttleStatus).toMatchObject({ maximumAvailable: 25, restoreRate: 10 });
    expect(transport.throttleStatus?.currentlyAvailable).toBeLessThan(10);
    expect(shopify.cards.map((card) => card.code)).toEqual(['BUCKET000001', 'BUCKET000002']);
  });

  it('applies a mutation whose response is lost, so the retry sees taken', async () => {
    // Prepare
    const rewards = client();
    const input = { code: 'LOSTRESP2345', amount: '25.00', note: 'event-uuid-3' };
    shopify.injectFaults('lost-response');

    // Act
    const error = await failure(rewards.createGiftCard(input));
    const retry = await rewards.createGiftCard(input);

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(shopify.cards).toHaveLength(1);
    expect(retry).toEqual({ status: 'taken', sends: 1 });
  });

  it('holds a timed-out request without applying it', async () => {
    // Prepare
    const rewards = giftCardIssuer(
      new ShopifyTransport({ baseUrl: shopify.url, auth: new StaticToken('shpat_sandbox'), apiVersion: API_VERSION, timeoutMs: 100 }),
    );
    shopify.injectFaults('timeout');

    // Act
    const error = await failure(rewards.createGiftCard({ code: 'TIMEOUT23456', amount: '25.00', note: 'n' }));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(shopify.cards).toHaveLength(0);
  });

  it('rejects a wrong access token as shopify_auth', async () => {
    // Act
    const error = await failure(client('shpat_wrong').createGiftCard({ code: 'AUTHFAIL2345', amount: '25.00', note: 'n' }));

    // Assess
    expect((error as PermanentError).reason).toBe('shopify_auth');
    expect(shopify.requests).toEqual([{ operation: 'giftCardCreate', status: 401 }]);
  });

  it('refuses a query that inlines its inputs instead of using variables', async () => {
    // Prepare
    const query = 'mutation { giftCardCreate(input: {code: "INLINE2345AB", initialValue: "5.00"}) { userErrors { code } } }';

    // Act
    const response = await fetch(`${shopify.url}/admin/api/${API_VERSION}/graphql.json`, {
      method: 'POST',
      headers: { 'X-Shopify-Access-Token': 'shpat_sandbox', 'Content-Type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    const body = (await response.json()) as { errors?: unknown[] };

    // Assess
    expect(body.errors).toHaveLength(1);
    expect(shopify.cards).toHaveLength(0);
  });
});
