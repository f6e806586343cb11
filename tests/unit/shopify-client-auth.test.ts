import { PermanentError } from '../../lib/domain/errors';
import type { Fetch } from '../../lib/infra/http';
import { giftCardAmountField, giftCardIssuer, type GiftCardIssuer } from '../../lib/adapters/shopify/gift-cards';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { ClientCredentialsTokens, StaticToken } from '../../lib/adapters/shopify/auth';
import { failure } from '../support/failure';

const ORIGIN = 'https://shop.myshopify.com';
const INPUT = { code: 'REFABCD2345WXYZ', amount: '25.00', note: 'referral 0190a1b2-uuid' };
const UNAUTHORIZED = { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' };

interface Sent {
  token: string;
  query: string;
  variables: Record<string, any>;
}

/**
 * A shop behind one fetch: the token endpoint hands out shpat_1, shpat_2, …; the Admin API
 * answers `admin(sent)` and records what it got.
 */
function shop(admin: (sent: Sent) => Response): { fetch: Fetch; grants: () => number; sent: Sent[] } {
  let grants = 0;
  const sent: Sent[] = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    if (String(input).endsWith('/admin/oauth/access_token')) {
      grants++;
      return json({ access_token: `shpat_${grants}`, scope: 'write_gift_cards', expires_in: 86_399 });
    }
    const body = JSON.parse(String(init?.body)) as { query: string; variables: Record<string, unknown> };
    const one = { token: String((init?.headers as Record<string, string>)['X-Shopify-Access-Token']), ...body };
    sent.push(one);
    return admin(one);
  }) as Fetch;
  return { fetch: fetchImpl, grants: () => grants, sent };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function created(): Response {
  return json({
    data: { giftCardCreate: { giftCard: { id: 'gid://shopify/GiftCard/7', lastCharacters: 'WXYZ' }, giftCardCode: null, userErrors: [] } },
  });
}

function currency(code = 'EUR'): Response {
  return json({ data: { shop: { currencyCode: code } } });
}

function granted(fetchImpl: Fetch, apiVersion = '2026-04'): GiftCardIssuer {
  const auth = new ClientCredentialsTokens({ origin: ORIGIN, clientId: 'cid', clientSecret: 'shpss_x', fetch: fetchImpl });
  return giftCardIssuer(new ShopifyTransport({ baseUrl: ORIGIN, auth, apiVersion, fetch: fetchImpl, pacer: false }));
}

describe('Shopify transport: a token the Admin API refuses', () => {
  it('renews the token once and sends the same request again with the new one', async () => {
    // Prepare: the first token has expired by the time it reaches Shopify
    const { fetch, grants, sent } = shop((s) => (s.token === 'shpat_1' ? json(UNAUTHORIZED, 401) : created()));

    // Act
    const result = await granted(fetch).createGiftCard(INPUT);

    // Assess
    expect(result).toEqual({ status: 'created', id: 'gid://shopify/GiftCard/7', lastCharacters: 'WXYZ' });
    expect(sent.map((s) => s.token)).toEqual(['shpat_1', 'shpat_2']);
    expect(sent[1].variables).toEqual(sent[0].variables);
    expect(grants()).toBe(2);
  });

  it('says a create it sent again after renewing the token was sent twice, when the resend answers TAKEN', async () => {
    // Prepare: the first send may have created the card before the 401 came back
    const taken = json({
      data: {
        giftCardCreate: { giftCard: null, giftCardCode: null, userErrors: [{ code: 'TAKEN', field: ['input', 'code'], message: 'taken' }] },
      },
    });
    const { fetch } = shop((s) => (s.token === 'shpat_1' ? json(UNAUTHORIZED, 401) : taken));

    // Act
    const result = await granted(fetch).createGiftCard(INPUT);

    // Assess
    expect(result).toEqual({ status: 'taken', sends: 2 });
  });

  it('gives up with shopify_auth when a fresh token is refused too', async () => {
    // Prepare
    const { fetch, grants } = shop(() => json(UNAUTHORIZED, 401));

    // Act
    const error = await failure(granted(fetch).createGiftCard(INPUT));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('shopify_auth');
    expect(grants()).toBe(2);
  });

  it('shares one renewal between concurrent requests refused with the same token', async () => {
    // Prepare
    const { fetch, grants } = shop((s) => (s.token === 'shpat_1' ? json(UNAUTHORIZED, 401) : created()));
    const client = granted(fetch);

    // Act
    await Promise.all([client.createGiftCard(INPUT), client.createGiftCard({ ...INPUT, code: 'REFABCD2345QQQQ' })]);

    // Assess
    expect(grants()).toBe(2);
  });

  it('does not retry a static token, which cannot change', async () => {
    // Prepare
    const { fetch, sent } = shop(() => json(UNAUTHORIZED, 401));
    const client = giftCardIssuer(
      new ShopifyTransport({ baseUrl: ORIGIN, auth: new StaticToken('shpat_static'), apiVersion: '2026-04', fetch, pacer: false }),
    );

    // Act
    const error = await failure(client.createGiftCard(INPUT));

    // Assess
    expect(error.message).toContain('SHOPIFY_ACCESS_TOKEN');
    expect(sent).toHaveLength(1);
  });
});

describe('giftCardIssuer: the gift-card amount input per API version', () => {
  it.each([
    ['2026-01', 'initialValue'],
    ['2026-04', 'initialValue'],
    ['2026-07', 'initialAmount'],
    ['2026-10', 'initialAmount'],
    ['unstable', 'initialAmount'],
  ])('%s takes %s', (version, field) => {
    expect(giftCardAmountField(version)).toBe(field);
  });

  it('sends initialAmount in the shop currency, read once for every card', async () => {
    // Prepare
    const { fetch, sent } = shop((s) => (s.query.includes('shop {') ? currency('EUR') : created()));
    const client = granted(fetch, '2026-10');

    // Act
    await client.createGiftCard(INPUT);
    await client.createGiftCard({ ...INPUT, code: 'REFABCD2345QQQQ' });

    // Assess
    const creates = sent.filter((s) => s.query.includes('giftCardCreate'));
    expect(sent.filter((s) => s.query.includes('shop {'))).toHaveLength(1);
    expect(creates[0].variables.input).toMatchObject({ initialAmount: { amount: '25.00', currencyCode: 'EUR' } });
    expect(creates[0].variables.input).not.toHaveProperty('initialValue');
  });

  it('sends initialValue, and reads no currency, for a version before initialAmount', async () => {
    // Prepare
    const { fetch, sent } = shop(() => created());

    // Act
    await granted(fetch, '2026-04').createGiftCard(INPUT);

    // Assess
    expect(sent).toHaveLength(1);
    expect(sent[0].variables.input).toMatchObject({ initialValue: '25.00' });
    expect(sent[0].variables.input).not.toHaveProperty('initialAmount');
  });
});
