import { startFakeShopify, type FakeShopify } from '../../local/sandbox/shopify';

const VERSION = '2026-10';
const APP = { clientId: 'sandbox-client', clientSecret: 'shpss_sandbox_secret' };

describe('the sandbox shop holds every request to the published schema', () => {
  let shopify: FakeShopify;

  beforeAll(async () => {
    shopify = await startFakeShopify({ port: 0, clientCredentials: { ...APP, tokenTtlMs: 60_000 } });
  });

  afterEach(() => shopify.reset());

  afterAll(async () => {
    await shopify.close();
  });

  async function graphql(query: string, variables?: unknown, token = 'shpat_sandbox'): Promise<{ status: number; body: any }> {
    const response = await fetch(`${shopify.url}/admin/api/${VERSION}/graphql.json`, {
      method: 'POST',
      headers: { 'X-Shopify-Access-Token': token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, body: await response.json() };
  }

  async function grant(secret = APP.clientSecret): Promise<{ status: number; body: any }> {
    const response = await fetch(`${shopify.url}/admin/oauth/access_token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: APP.clientId, client_secret: secret }).toString(),
    });
    return { status: response.status, body: await response.json() };
  }

  it('answers a field the schema lacks as Shopify does: 200, errors with locations and a code', async () => {
    // Act
    const { status, body } = await graphql(
      'mutation M($input: GiftCardCreateInput!) { giftCardCreate(input: $input) { giftCard { lastFour } } }',
      {
        input: { code: 'REFABCD2345WXYZ', initialAmount: { amount: '25.00', currencyCode: 'USD' } },
      },
    );

    // Assess
    expect(status).toBe(200);
    expect(body.errors).toEqual([expect.objectContaining({ locations: [expect.any(Object)], extensions: { code: 'undefinedField' } })]);
    expect(shopify.cards).toHaveLength(0);
  });

  it('refuses variables that do not coerce to their declared type, creating nothing', async () => {
    // Act: MoneyInput requires currencyCode
    const { body } = await graphql('mutation M($input: GiftCardCreateInput!) { giftCardCreate(input: $input) { userErrors { code } } }', {
      input: { code: 'REFABCD2345WXYZ', initialAmount: { amount: '25.00' } },
    });

    // Assess
    expect(body.errors[0].message).toContain('currencyCode');
    expect(shopify.cards).toHaveLength(0);
  });

  it('answers a query that does not parse with the error and where it is', async () => {
    // Act
    const { body } = await graphql('query { shop { currencyCode }');

    // Assess
    expect(body.errors).toEqual([
      expect.objectContaining({ message: expect.stringContaining('Syntax Error'), locations: [expect.any(Object)] }),
    ]);
  });

  it('accepts a deprecated input, as Shopify still does', async () => {
    // Act
    const { body } = await graphql('mutation M($input: GiftCardCreateInput!) { giftCardCreate(input: $input) { userErrors { code } } }', {
      input: { code: 'REFABCD2345WXYZ', initialValue: '25.00' },
    });

    // Assess
    expect(body.data.giftCardCreate.userErrors).toEqual([]);
    expect(shopify.cards).toHaveLength(1);
  });

  it('grants a token for the app credentials, which the Admin API then accepts', async () => {
    // Act
    const granted = await grant();
    const { status } = await graphql('query ShopCurrency { shop { currencyCode } }', {}, granted.body.access_token);

    // Assess
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({ access_token: expect.stringMatching(/^shpat_/), expires_in: 60 });
    expect(status).toBe(200);
  });

  it('refuses a wrong client secret with a 400', async () => {
    // Act
    const refused = await grant('shpss_wrong');

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.body.access_token).toBeUndefined();
  });

  it('answers a revoked token with the 401 an invalid token gets', async () => {
    // Prepare
    const { body: granted } = await grant();
    shopify.revokeTokens();

    // Act
    const { status, body } = await graphql('query ShopCurrency { shop { currencyCode } }', {}, granted.access_token);

    // Assess
    expect(status).toBe(401);
    expect(body.errors).toContain('Invalid API key or access token');
  });
});
