import { PermanentError, RetryableError } from '../../lib/domain/errors';
import type { Fetch } from '../../lib/infra/http';
import { AUTH_INVALID_REASON, ClientCredentialsTokens } from '../../lib/adapters/shopify/auth';
import { failure } from '../support/failure';

const ORIGIN = 'https://shop.myshopify.com';
const SECRET = 'shpss_unit_client_secret';
const DAY_S = 86_399;

interface Grant {
  url: string;
  init: RequestInit;
}

/** A token endpoint answering from a script; each success hands out a new token. */
function tokenEndpoint(...script: (Response | Error | 'ok')[]): { fetch: Fetch; grants: Grant[] } {
  const grants: Grant[] = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    grants.push({ url: String(input), init: init ?? {} });
    const next = script.shift() ?? 'ok';
    if (next instanceof Error) throw next;
    if (next === 'ok')
      return json({ access_token: `shpat_${grants.length}`, scope: 'write_gift_cards,read_gift_cards', expires_in: DAY_S });
    return next;
  }) as Fetch;
  return { fetch: fetchImpl, grants };
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

function provider(fetchImpl: Fetch, now: () => number = () => 0): ClientCredentialsTokens {
  return new ClientCredentialsTokens({ origin: ORIGIN, clientId: 'client-id', clientSecret: SECRET, fetch: fetchImpl, now });
}

describe('ClientCredentialsTokens: the grant', () => {
  it('posts the form-encoded client credentials grant to the shop', async () => {
    // Prepare
    const { fetch, grants } = tokenEndpoint();

    // Act
    const token = await provider(fetch).token();

    // Assess
    expect(token).toBe('shpat_1');
    expect(grants[0].url).toBe(`${ORIGIN}/admin/oauth/access_token`);
    expect(grants[0].init.method).toBe('POST');
    expect(grants[0].init.headers).toMatchObject({ 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(Object.fromEntries(new URLSearchParams(String(grants[0].init.body)))).toEqual({
      grant_type: 'client_credentials',
      client_id: 'client-id',
      client_secret: SECRET,
    });
  });

  it('keeps the token for every later request while it is fresh', async () => {
    // Prepare
    const { fetch, grants } = tokenEndpoint();
    const tokens = provider(fetch);
    await tokens.token();

    // Act
    const again = await tokens.token();

    // Assess
    expect(again).toBe('shpat_1');
    expect(grants).toHaveLength(1);
  });

  it('renews five minutes before the token expires, not at the last second', async () => {
    // Prepare
    let now = 0;
    const { fetch, grants } = tokenEndpoint();
    const tokens = provider(fetch, () => now);
    await tokens.token();
    now = DAY_S * 1000 - 5 * 60_000 - 1;
    const beforeMargin = await tokens.token();

    // Act
    now += 1;
    const inMargin = await tokens.token();

    // Assess
    expect(beforeMargin).toBe('shpat_1');
    expect(inMargin).toBe('shpat_2');
    expect(grants).toHaveLength(2);
  });

  it('shares one renewal between concurrent callers', async () => {
    // Prepare
    const { fetch, grants } = tokenEndpoint();
    const tokens = provider(fetch);

    // Act
    const all = await Promise.all([tokens.token(), tokens.token(), tokens.token()]);

    // Assess
    expect(all).toEqual(['shpat_1', 'shpat_1', 'shpat_1']);
    expect(grants).toHaveLength(1);
  });

  it('drops a refused token, but not a newer one that already replaced it', async () => {
    // Prepare
    const { fetch, grants } = tokenEndpoint();
    const tokens = provider(fetch);
    const first = await tokens.token();
    tokens.rejected(first);
    const second = await tokens.token();

    // Act: a late 401 for the first token arrives after the renewal
    tokens.rejected(first);
    const third = await tokens.token();

    // Assess
    expect(second).toBe('shpat_2');
    expect(third).toBe('shpat_2');
    expect(grants).toHaveLength(2);
  });
});

describe('ClientCredentialsTokens: failures', () => {
  it.each([400, 401])('refuses bad credentials (HTTP %i) for good, naming the settings and nothing secret', async (status) => {
    // Prepare
    const body = { error: 'invalid_client', error_description: `client_secret ${SECRET} is wrong` };
    const { fetch } = tokenEndpoint(json(body, status));

    // Act
    const error = await failure(provider(fetch).token());

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe(AUTH_INVALID_REASON);
    expect(error.message).toContain('SHOPIFY_CLIENT_ID/SHOPIFY_CLIENT_SECRET were refused');
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain('invalid_client');
  });

  it.each([
    ['HTTP 500', json({}, 500)],
    ['HTTP 429', json({}, 429, { 'Retry-After': '2' })],
    ['a network error', new TypeError('fetch failed')],
    ['a 200 without a token', json({ message: 'maintenance' })],
  ])('retries %s', async (_what, answer) => {
    // Prepare
    const { fetch } = tokenEndpoint(answer);

    // Act
    const error = await failure(provider(fetch).token());

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('asks again after a failed renewal instead of caching the failure', async () => {
    // Prepare
    const { fetch, grants } = tokenEndpoint(json({}, 503));
    const tokens = provider(fetch);
    await failure(tokens.token());

    // Act
    const token = await tokens.token();

    // Assess
    expect(token).toBe('shpat_2');
    expect(grants).toHaveLength(2);
  });
});
