import { CustomerIoClient, CustomerIoStatusSender, statusEventId } from '../../lib/adapters/customerio';
import { PermanentError, RetryableError } from '../../lib/domain/errors';
import { statusMessage, type ReferralStatus, type StatusMessage } from '../../lib/domain/status';
import type { Fetch } from '../../lib/infra/http';
import { isUlid, ulidFromUuid } from '../../lib/infra/ulid';
import { failure } from '../support/failure';

const API_KEY = 'secret-api-key-123';
const EVENT_ID = '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d';
const REFERRER = 'referrer@example.com';
const REDEEMER = 'redeemer@example.com';
const STATUS_EVENT = 'referral_status';
// 2026-12-03T08:00:00Z.
const NOW = Date.UTC(2026, 11, 3, 8);
const STATUSES: ReferralStatus[] = ['awaiting_qualification', 'held', 'rewarded', 'not_qualified', 'cancelled'];

interface Sent {
  url: string;
  body: Record<string, unknown>;
}

/** A status sender on a fetch that records each request and answers `status`. */
function sender(status = 200, answer: unknown = {}): { statuses: CustomerIoStatusSender; client: CustomerIoClient; sent: Sent[] } {
  const sent: Sent[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    sent.push({ url, body: JSON.parse(String(init.body)) as Record<string, unknown> });
    return new Response(JSON.stringify(answer), { status, headers: { 'Content-Type': 'application/json' } });
  }) as unknown as Fetch;
  const client = new CustomerIoClient({ trackUrl: 'https://track.example', siteId: 'site-1', apiKey: API_KEY, fetch });
  return { statuses: new CustomerIoStatusSender(client, STATUS_EVENT, () => NOW), client, sent };
}

const record = { eventId: EVENT_ID, referrerEmail: REFERRER, redeemerEmail: REDEEMER };

describe('CustomerIoStatusSender.sendStatus', () => {
  it("sends one event named CUSTOMERIO_STATUS_EVENT on the redeemer's profile with the status, both emails and the deadline as a UTC date", async () => {
    // Prepare
    const { statuses, sent } = sender();
    // 23:30 UTC on 2027-01-02: a local-time formatter east of UTC would say the 3rd.
    const qualifyBy = Date.UTC(2027, 0, 2, 23, 30);

    // Act
    await statuses.sendStatus(statusMessage(record, 'awaiting_qualification', { qualifyBy }));

    // Assess
    expect(sent).toHaveLength(1);
    expect(sent[0].url).toBe('https://track.example/api/v1/customers/redeemer%40example.com/events');
    expect(sent[0].body).toEqual({
      name: STATUS_EVENT,
      id: statusEventId(EVENT_ID, 'awaiting_qualification'),
      timestamp: Math.floor(NOW / 1000),
      data: { status: 'awaiting_qualification', referreremail: REFERRER, refereeemail: REDEEMER, qualifyby: '2027-01-02' },
    });
  });

  it('sends paysafter for a held referral and reason for a cancelled one, and no date or reason a status does not have', async () => {
    // Prepare
    const { statuses, sent } = sender();

    // Act
    await statuses.sendStatus(statusMessage(record, 'held', { paysAfter: Date.UTC(2026, 11, 17, 12) }));
    await statuses.sendStatus(statusMessage(record, 'cancelled', { reason: 'refunded' }));
    await statuses.sendStatus(statusMessage(record, 'rewarded'));

    // Assess
    expect(sent.map(({ body }) => body.data)).toEqual([
      { status: 'held', referreremail: REFERRER, refereeemail: REDEEMER, paysafter: '2026-12-17' },
      { status: 'cancelled', referreremail: REFERRER, refereeemail: REDEEMER, reason: 'refunded' },
      { status: 'rewarded', referreremail: REFERRER, refereeemail: REDEEMER },
    ]);
  });

  it('never sends a reward code, even one riding along on the message', async () => {
    // Prepare
    const { statuses, sent } = sender();
    const code = 'GIFTCODE12345678';
    const message = { ...statusMessage(record, 'rewarded'), referrerCode: code, redeemerCode: code, discountreferrer: code };

    // Act
    await statuses.sendStatus(message as StatusMessage);

    // Assess
    expect(JSON.stringify(sent[0].body)).not.toContain(code);
    expect(Object.keys(sent[0].body.data as object).sort()).toEqual(['refereeemail', 'referreremail', 'status']);
  });

  it('gives a repeated status of one referral the same id, so Customer.io drops the repeat', async () => {
    // Prepare
    const { statuses, sent } = sender();
    const message = statusMessage(record, 'not_qualified', { reason: 'no_qualifying_event' });

    // Act
    await statuses.sendStatus(message);
    await statuses.sendStatus({ ...message });

    // Assess
    expect(sent).toHaveLength(2);
    expect(sent[1].body.id).toBe(sent[0].body.id);
    expect(isUlid(String(sent[0].body.id))).toBe(true);
  });

  it("gives each status of a referral its own id, none of them the fulfilment's or another referral's", () => {
    // Prepare
    const other = '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6e';

    // Act
    const ids = STATUSES.map((status) => statusEventId(EVENT_ID, status));
    const otherIds = STATUSES.map((status) => statusEventId(other, status));

    // Assess
    expect(new Set([...ids, ...otherIds, ulidFromUuid(EVENT_ID), ulidFromUuid(other)]).size).toBe(2 * STATUSES.length + 2);
    expect(ids.every(isUlid)).toBe(true);
    // The same on every call: a pure function of (referral, status).
    expect(STATUSES.map((status) => statusEventId(EVENT_ID.toUpperCase(), status))).toEqual(ids);
  });

  it("refuses a redeemer email over Customer.io's 150-byte identifier limit before any request", async () => {
    // Prepare
    const { statuses, sent } = sender();
    const long = `${'r'.repeat(140)}@example.com`;

    // Act
    const error = await failure(statuses.sendStatus(statusMessage({ ...record, redeemerEmail: long }, 'rewarded')));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ reason: 'customerio_invalid_event' });
    expect(sent).toEqual([]);
  });

  it("refuses an event name over Customer.io's 100-byte limit and a date that is not a time, before any request", async () => {
    // Prepare
    const { statuses, client, sent } = sender();
    const longName = new CustomerIoStatusSender(client, 'é'.repeat(51), () => NOW);

    // Act
    const nameError = await failure(longName.sendStatus(statusMessage(record, 'rewarded')));
    const dateError = await failure(statuses.sendStatus(statusMessage(record, 'held', { paysAfter: Number.NaN })));

    // Assess
    expect(nameError).toMatchObject({ reason: 'customerio_invalid_event' });
    expect(dateError).toMatchObject({ reason: 'customerio_invalid_event' });
    expect(sent).toEqual([]);
  });

  it('classifies failures as the fulfilment event does and keeps emails and the key out of the message', async () => {
    // Prepare
    const unavailable = sender(503, { meta: { errors: ['down'] } }).statuses;
    const rejected = sender(400, { meta: { errors: [`bad event for ${REDEEMER} (${REFERRER}) key ${API_KEY}`] } }).statuses;

    // Act
    const retryable = await failure(unavailable.sendStatus(statusMessage(record, 'rewarded')));
    const permanent = await failure(rejected.sendStatus(statusMessage(record, 'rewarded')));

    // Assess
    expect(retryable).toBeInstanceOf(RetryableError);
    expect(permanent).toBeInstanceOf(PermanentError);
    expect(permanent).toMatchObject({ reason: 'customerio_rejected' });
    expect(permanent.message).not.toContain(REDEEMER);
    expect(permanent.message).not.toContain(REFERRER);
    expect(permanent.message).not.toContain(API_KEY);
  });
});
