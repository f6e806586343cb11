import { announce, type StatusFailure } from '../../lib/domain/announce';
import { PermanentError, RetryableError } from '../../lib/domain/errors';
import type { Referral } from '../../lib/domain/referral';
import { fulfilReferral, type EventSender, type FulfilDeps, type FulfilmentMessage } from '../../lib/domain/rewards';
import type { StatusMessage, StatusSender } from '../../lib/domain/status';
import { FakeShop } from '../support/fake-shop';
import { MemoryLedger } from '../support/memory-ledger';

/**
 * A status announcement never decides the money path: it is told after the write that reached its
 * state, so a status Customer.io refuses for good is reported and the referral goes on.
 */
const RECORD = {
  eventId: '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61',
  referrerEmail: 'referrer@example.com',
  redeemerEmail: 'redeemer@example.com',
};

const REFERRAL: Referral = {
  v: 1,
  eventId: RECORD.eventId,
  eventName: 'referral redeemed',
  referrerEmail: RECORD.referrerEmail,
  redeemerEmail: RECORD.redeemerEmail,
  customerEmail: RECORD.redeemerEmail,
};

class Recorder implements StatusSender {
  public readonly sent: StatusMessage[] = [];
  public constructor(private readonly failWith?: Error) {}

  public async sendStatus(message: StatusMessage): Promise<void> {
    this.sent.push(message);
    if (this.failWith) throw this.failWith;
  }
}

class Fulfilments implements EventSender {
  public readonly sent: FulfilmentMessage[] = [];
  public async sendFulfilment(message: FulfilmentMessage): Promise<void> {
    this.sent.push(message);
  }
}

function paying(status: StatusSender, onStatusFailed: (failure: StatusFailure) => void) {
  const ledger = new MemoryLedger();
  const customerio = new Fulfilments();
  let n = 0;
  const deps: FulfilDeps = {
    ledger,
    shopify: new FakeShop(),
    customerio,
    rewardAmount: '25.00',
    customerioEvent: 'referral_fulfilled',
    newCode: () => `CODE${String(++n).padStart(4, '0')}`,
    customerioEventId: () => '01JD4F4V3D7KXA5BH1T1Y0PTB1',
    retry: { baseDelayMs: 1, maxDelayMs: 2 },
    status,
    onStatusFailed,
  };
  return { ledger, customerio, deps };
}

describe('status announcements', () => {
  it('completes a paid referral whose `rewarded` status Customer.io refuses for good, and reports the refusal', async () => {
    // Prepare
    const failures: StatusFailure[] = [];
    const { ledger, customerio, deps } = paying(
      new Recorder(new PermanentError('customerio_invalid_event', 'Customer.io event: identifier longer than 150 bytes')),
      (failure) => failures.push(failure),
    );

    // Act
    const result = await fulfilReferral(REFERRAL, deps, { owner: 'worker-1', deadline: Date.now() + 30_000 });

    // Assess
    expect(result).toEqual({ outcome: 'completed' });
    expect((await ledger.get(RECORD.eventId))?.status).toBe('COMPLETED');
    expect(customerio.sent).toHaveLength(1);
    expect(failures).toEqual([
      {
        eventId: RECORD.eventId,
        status: 'rewarded',
        reason: 'customerio_invalid_event',
        message: 'Customer.io event: identifier longer than 150 bytes',
      },
    ]);
  });

  it('throws a retryable failure, so the message comes again and tells the status again', async () => {
    // Prepare
    const failures: StatusFailure[] = [];
    const announcer = {
      status: new Recorder(new RetryableError('Customer.io track: HTTP 503')),
      onStatusFailed: failures.push.bind(failures),
    };

    // Act
    const error = await announce(announcer, undefined, RECORD, 'held', { paysAfter: Date.UTC(2026, 11, 17) }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(failures).toEqual([]);
  });

  it.each([
    ['awaiting_qualification', { qualifyBy: Number(undefined) }],
    ['held', { paysAfter: Number(undefined) }],
  ] as const)('tells %s without its date when the record has none, rather than a date that is not one', async (status, details) => {
    // Prepare
    const recorder = new Recorder();

    // Act
    await announce({ status: recorder }, undefined, RECORD, status, details);

    // Assess
    expect(recorder.sent).toHaveLength(1);
    expect(recorder.sent[0]).not.toHaveProperty('qualifyBy');
    expect(recorder.sent[0]).not.toHaveProperty('paysAfter');
    expect(recorder.sent[0]).toMatchObject({ status, recipient: RECORD.redeemerEmail });
  });
});
