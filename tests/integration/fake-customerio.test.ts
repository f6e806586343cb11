import { CustomerIoClient, type TrackEvent } from '../../lib/adapters/customerio';
import { RetryableError } from '../../lib/domain/errors';
import { ulidFromUuid } from '../../lib/infra/ulid';
import { startFakeCustomerIo, type FakeCustomerIo } from '../../local/sandbox/customerio';

const EMAIL = 'Redeemer@Example.com';

function event(uuid = '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d'): TrackEvent {
  return {
    name: 'pyramid_scheme_fulfillment',
    id: ulidFromUuid(uuid),
    timestamp: 1_720_000_000,
    data: { discountreferrer: 'GIFTCODE12345678', referreremail: 'referrer@example.com' },
  };
}

describe('CustomerIoClient against the fake Track API', () => {
  let fake: FakeCustomerIo;
  let client: CustomerIoClient;

  beforeAll(async () => {
    fake = await startFakeCustomerIo({ port: 0 });
    client = new CustomerIoClient({ trackUrl: fake.url, siteId: 'sandbox-site', apiKey: 'sandbox-key', timeoutMs: 2000 });
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await fake.close();
  });

  it('records an event', async () => {
    // Prepare
    const sent = event();

    // Act
    await client.sendEvent(EMAIL, sent);

    // Assess
    expect(fake.events).toHaveLength(1);
    expect(fake.events[0]).toMatchObject({
      identifier: EMAIL.toLowerCase(),
      name: sent.name,
      id: sent.id,
      timestamp: sent.timestamp,
      data: sent.data,
    });
  });

  it.each([
    [150, 200],
    [151, 400],
  ])('answers an identifier of %i bytes with %i, as Customer.io does (meta.errors on a 400)', async (bytes, status) => {
    // Prepare: a raw request, so the client's own check does not stand in for the fake's
    const identifier = `${'r'.repeat(bytes - '@example.com'.length)}@example.com`;
    const { name, id, timestamp, data } = event();

    // Act
    const response = await fetch(`${fake.url}/api/v1/customers/${encodeURIComponent(identifier)}/events`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('sandbox-site:sandbox-key').toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, id, timestamp, data }),
    });

    // Assess
    expect(response.status).toBe(status);
    const body = (await response.json()) as { meta?: { errors?: string[] } };
    if (status === 400) expect(body.meta?.errors?.[0]).toContain('150 bytes');
    expect(fake.events).toHaveLength(status === 200 ? 1 : 0);
  });

  it('records the same id only once', async () => {
    // Prepare
    const sent = event();

    // Act
    await client.sendEvent(EMAIL, sent);
    await client.sendEvent(EMAIL, sent);

    // Assess
    expect(fake.events).toHaveLength(1);
    expect(fake.duplicatesIgnored).toBe(1);
  });

  it('records the event on a lost response while the client sees a RetryableError', async () => {
    // Prepare
    fake.injectFaults('lost-response');

    // Act
    const result = client.sendEvent(EMAIL, event());

    // Assess
    await expect(result).rejects.toBeInstanceOf(RetryableError);
    expect(fake.events).toHaveLength(1);
  });

  it('does not duplicate when the client resends after a lost response', async () => {
    // Prepare
    fake.injectFaults('lost-response');
    const sent = event();
    await client.sendEvent(EMAIL, sent).catch(() => undefined);

    // Act
    await client.sendEvent(EMAIL, sent);

    // Assess
    expect(fake.events).toHaveLength(1);
    expect(fake.duplicatesIgnored).toBe(1);
  });

  it('refuses wrong credentials with a 401 and records nothing', async () => {
    // Prepare
    const wrong = new CustomerIoClient({ trackUrl: fake.url, siteId: 'sandbox-site', apiKey: 'nope' });

    // Act
    const result = wrong.sendEvent(EMAIL, event());

    // Assess
    await expect(result).rejects.toMatchObject({ reason: 'customerio_auth' });
    expect(fake.events).toHaveLength(0);
  });

  it('times out on a held request and records nothing', async () => {
    // Prepare
    fake.injectFaults('timeout');
    const impatient = new CustomerIoClient({ trackUrl: fake.url, siteId: 'sandbox-site', apiKey: 'sandbox-key', timeoutMs: 200 });

    // Act
    const result = impatient.sendEvent(EMAIL, event());

    // Assess
    await expect(result).rejects.toBeInstanceOf(RetryableError);
    expect(fake.events).toHaveLength(0);
  });

  it('answers 429 with Retry-After: 1', async () => {
    // Prepare
    fake.injectFaults('http429');

    // Act
    const result = client.sendEvent(EMAIL, event());

    // Assess
    await expect(result).rejects.toMatchObject({ retryAfterMs: 1000 });
  });
});
