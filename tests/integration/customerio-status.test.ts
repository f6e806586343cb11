import { CustomerIoClient, CustomerIoStatusSender } from '../../lib/adapters/customerio';
import { RetryableError } from '../../lib/domain/errors';
import { statusMessage } from '../../lib/domain/status';
import { withRetry } from '../../lib/infra/retry';
import { startFakeCustomerIo, type FakeCustomerIo } from '../../local/sandbox/customerio';

const RECORD = {
  eventId: '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d',
  referrerEmail: 'referrer@example.com',
  redeemerEmail: 'Redeemer@Example.com',
};

describe('status events against the fake Track API', () => {
  let fake: FakeCustomerIo;
  let statuses: CustomerIoStatusSender;

  beforeAll(async () => {
    fake = await startFakeCustomerIo({ port: 0 });
    const client = new CustomerIoClient({ trackUrl: fake.url, siteId: 'sandbox-site', apiKey: 'sandbox-key', timeoutMs: 2000 });
    statuses = new CustomerIoStatusSender(client, 'referral_status');
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await fake.close();
  });

  it("records a status on the redeemer's profile with its data and no code", async () => {
    // Act
    await statuses.sendStatus(statusMessage(RECORD, 'held', { paysAfter: Date.UTC(2026, 11, 17) }));

    // Assess
    expect(fake.events).toHaveLength(1);
    expect(fake.events[0]).toMatchObject({
      identifier: 'redeemer@example.com',
      name: 'referral_status',
      data: { status: 'held', referreremail: 'referrer@example.com', refereeemail: 'Redeemer@Example.com', paysafter: '2026-12-17' },
    });
    expect(Object.keys(fake.events[0].data).sort()).toEqual(['paysafter', 'refereeemail', 'referreremail', 'status']);
  });

  it('accepts a repeated status of a referral once, however it is repeated', async () => {
    // Prepare: the first answer is lost after the event is recorded, so the retry resends it.
    const message = statusMessage(RECORD, 'awaiting_qualification', { qualifyBy: Date.UTC(2027, 0, 2) });
    fake.injectFaults('lost-response');

    // Act
    await withRetry(() => statuses.sendStatus(message), { deadline: Date.now() + 10_000, baseDelayMs: 1, maxDelayMs: 5 });
    await statuses.sendStatus(message);

    // Assess
    expect(fake.events).toHaveLength(1);
    expect(fake.duplicatesIgnored).toBe(2);
    expect(fake.requests.map(({ status }) => status)).toEqual([0, 200, 200]);
  });

  it('records each status of a referral once: a new status is not taken for a repeat of another', async () => {
    // Act
    for (const status of ['awaiting_qualification', 'held', 'rewarded', 'held', 'rewarded'] as const) {
      await statuses.sendStatus(statusMessage(RECORD, status));
    }

    // Assess
    expect(fake.events.map(({ data }) => data.status)).toEqual(['awaiting_qualification', 'held', 'rewarded']);
    expect(fake.duplicatesIgnored).toBe(2);
  });

  it('fails retryably while Customer.io is down, then records the status once', async () => {
    // Prepare
    fake.injectFaults('http503');
    const message = statusMessage(RECORD, 'cancelled', { reason: 'refunded' });

    // Act
    const first = await statuses.sendStatus(message).catch((error: unknown) => error);
    await statuses.sendStatus(message);

    // Assess
    expect(first).toBeInstanceOf(RetryableError);
    expect(fake.events.map(({ data }) => data)).toEqual([expect.objectContaining({ status: 'cancelled', reason: 'refunded' })]);
  });
});
