import { CustomerIoClient, type TrackEvent } from '../../lib/adapters/customerio';
import { PermanentError, RetryableError } from '../../lib/domain/errors';
import type { Fetch } from '../../lib/infra/http';
import { ulidFromUuid } from '../../lib/infra/ulid';
import { failure } from '../support/failure';

const API_KEY = 'secret-api-key-123';
const SITE_ID = 'site-1';
const EMAIL = 'Redeemer+1@Example.com';
const CODE = 'GIFTCODE12345678';

interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch that records each call and answers with `respond` (or throws what it throws). */
function fakeFetch(respond: () => Response | Promise<Response>): { fetch: Fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return respond();
  }) as unknown as Fetch;
  return { fetch, calls };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

function client(fetch: Fetch): CustomerIoClient {
  return new CustomerIoClient({ trackUrl: 'https://track.example', siteId: SITE_ID, apiKey: API_KEY, fetch });
}

function event(overrides: Partial<TrackEvent> = {}): TrackEvent {
  return {
    name: 'pyramid_scheme_fulfillment',
    id: ulidFromUuid('0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d'),
    timestamp: 1_720_000_000,
    data: { discountreferrer: CODE, referreremail: 'referrer@example.com' },
    ...overrides,
  };
}

describe('CustomerIoClient.sendEvent', () => {
  it('posts to the URL-encoded identifier with Basic auth', async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));

    // Act
    await client(fetch).sendEvent(EMAIL, event());

    // Assess
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('https://track.example/api/v1/customers/Redeemer%2B1%40Example.com/events');
    expect(calls[0].init.method).toBe('POST');
    const headers = calls[0].init.headers as Record<string, string>;
    expect(headers.Authorization).toBe(`Basic ${Buffer.from(`${SITE_ID}:${API_KEY}`).toString('base64')}`);
  });

  it('sends name, data, id and timestamp as the JSON body', async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));
    const sent = event();

    // Act
    await client(fetch).sendEvent(EMAIL, sent);

    // Assess
    expect(JSON.parse(calls[0].init.body as string)).toEqual({
      name: sent.name,
      data: sent.data,
      id: sent.id,
      timestamp: sent.timestamp,
    });
  });

  it('resolves on 200', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => json(200, {}));

    // Act
    const result = client(fetch).sendEvent(EMAIL, event());

    // Assess
    await expect(result).resolves.toBeUndefined();
  });

  it('marks a 503 as an outage, its Retry-After kept as a floor, and a 429 not', async () => {
    // Prepare
    const down = fakeFetch(() => json(503, {}, { 'Retry-After': '1' }));
    const limited = fakeFetch(() => json(429, {}, { 'Retry-After': '1' }));

    // Act
    const outage = (await failure(client(down.fetch).sendEvent(EMAIL, event()))) as RetryableError;
    const rateLimited = (await failure(client(limited.fetch).sendEvent(EMAIL, event()))) as RetryableError;

    // Assess
    expect([outage.outage, outage.retryAfterMs]).toEqual([true, 1000]);
    expect(rateLimited.outage).toBe(false);
  });

  it('turns 429 with Retry-After into a RetryableError with retryAfterMs', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => json(429, {}, { 'Retry-After': '3' }));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(3000);
  });

  it('treats 500 as retryable', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => json(500, {}));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('treats a network error as retryable', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => {
      throw new TypeError('fetch failed');
    });

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('turns 401 into a PermanentError customerio_auth', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => json(401, { meta: { error: 'Unauthorized request' } }));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('customerio_auth');
  });

  it('turns 400 into a PermanentError customerio_rejected carrying meta.errors', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => json(400, { meta: { errors: ['timestamp is invalid'] } }));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('customerio_rejected');
    expect(error.message).toContain('timestamp is invalid');
  });

  it('names other 4xx statuses in the reason', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => json(404, {}));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    expect((error as PermanentError).reason).toBe('customerio_http_404');
  });

  it('refuses a reserved data key before any request', async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));
    const withReserved = event({ data: { recipient: 'someone@example.com' } });

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, withReserved));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(calls).toHaveLength(0);
  });

  it('refuses an id that is not a ULID before any request', async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event({ id: 'not-a-ulid' })));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(calls).toHaveLength(0);
  });

  it('refuses an identifier over 150 bytes before any request', async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));
    const identifier = `${'a'.repeat(140)}@example.com`;

    // Act
    const error = await failure(client(fetch).sendEvent(identifier, event()));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(calls).toHaveLength(0);
  });

  it('refuses a body over 100,000 bytes before any request', async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));
    const big = event({ data: { blob: 'x'.repeat(100_000) } });

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, big));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(calls).toHaveLength(0);
  });

  it('keeps the api key, emails and the gift-card code out of a 400 message', async () => {
    // Prepare
    const echoed = `bad event for ${EMAIL.toLowerCase()} code ${CODE.toLowerCase()} key ${API_KEY} cc other@x.org`;
    const { fetch } = fakeFetch(() => json(400, { meta: { errors: [echoed] } }));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    const message = error.message.toLowerCase();
    expect(message).toContain('bad event for');
    for (const secret of [API_KEY, EMAIL, CODE, 'other@x.org']) expect(message).not.toContain(secret.toLowerCase());
  });

  it('keeps the credentials out of a 400 message that echoes the Authorization header (Basic base64(site:key))', async () => {
    // Prepare: a proxy or a debugging endpoint echoing the request's headers
    const basic = Buffer.from(`${SITE_ID}:${API_KEY}`).toString('base64');
    const { fetch } = fakeFetch(() => json(400, { meta: { errors: [`bad request; authorization: Basic ${basic}; raw ${basic}`] } }));

    // Act
    const error = await failure(client(fetch).sendEvent(EMAIL, event()));

    // Assess
    expect(error.message).toContain('bad request');
    expect(error.message).not.toContain(basic);
    expect(error.message).not.toContain(basic.slice(0, 12));
  });

  it('keeps the api key and the email out of every error message', async () => {
    // Prepare
    const responses = [json(401, {}), json(403, {}), json(500, {}), json(404, { meta: { errors: [EMAIL] } })];
    let next = 0;
    const { fetch } = fakeFetch(() => responses[next++]);
    const sendOnce = () => failure(client(fetch).sendEvent(EMAIL, event()));

    // Act
    const errors = [await sendOnce(), await sendOnce(), await sendOnce(), await sendOnce()];

    // Assess
    for (const error of errors) {
      expect(error.message).not.toContain(API_KEY);
      expect(error.message.toLowerCase()).not.toContain(EMAIL.toLowerCase());
    }
  });
});

describe('CustomerIoClient.sendFulfilment', () => {
  const message = {
    eventId: '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d',
    name: 'pyramid_scheme_fulfillment',
    recipient: EMAIL,
    referrerEmail: 'referrer@example.com',
    redeemerEmail: 'redeemer@example.com',
    referrerCode: CODE,
    redeemerCode: 'GIFTCODE87654321',
    id: ulidFromUuid('0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d'),
    timestamp: 1_720_000_000,
  };

  it("posts to the recipient's profile", async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));

    // Act
    await client(fetch).sendFulfilment(message);

    // Assess
    expect(calls[0].url).toBe('https://track.example/api/v1/customers/Redeemer%2B1%40Example.com/events');
  });

  it("sends the codes and emails under the campaign's data keys, byte for byte as the template reads them", async () => {
    // Prepare
    const { fetch, calls } = fakeFetch(() => json(200, {}));

    // Act
    await client(fetch).sendFulfilment(message);

    // Assess: the exact body, key order included (CONTRACTS.md §3)
    expect(calls[0].init.body).toBe(
      JSON.stringify({
        name: 'pyramid_scheme_fulfillment',
        data: {
          discountreferrer: CODE,
          discountreferee: 'GIFTCODE87654321',
          referreremail: 'referrer@example.com',
          refereeemail: 'redeemer@example.com',
        },
        id: message.id,
        timestamp: 1_720_000_000,
      }),
    );
  });

  it('keeps the codes out of an error the answer names them in', async () => {
    // Prepare
    const { fetch } = fakeFetch(() => json(400, { meta: { errors: [`bad value ${CODE} for ${message.redeemerEmail}`] } }));

    // Act
    const error = await failure(client(fetch).sendFulfilment(message));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).not.toContain(CODE);
    expect(error.message).not.toContain(message.redeemerEmail);
  });
});
