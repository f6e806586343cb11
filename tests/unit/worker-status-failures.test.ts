import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { makeWorkerHandler } from '../../functions/worker';
import { PermanentError } from '../../lib/domain/errors';
import type { Referral } from '../../lib/domain/referral';
import type { FulfilDeps } from '../../lib/domain/rewards';
import { logger, metrics } from '../../lib/infra/observability';
import { lambdaContext } from '../../local/lambda-context';
import { FakeShop } from '../support/fake-shop';
import { MemoryLedger } from '../support/memory-ledger';
import { batch, fakeCustomerIo, sqsRecord } from '../support/worker';

const sqsMock = mockClient(SQSClient);

const REFERRAL: Referral = {
  v: 1,
  eventId: '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61',
  eventName: 'referral redeemed',
  referrerEmail: 'referrer@example.com',
  redeemerEmail: 'redeemer@example.com',
  customerEmail: 'redeemer@example.com',
};

beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'dlq-message-1' });
});

describe('worker: a status Customer.io refuses for good', () => {
  it('pays the referral, dead-letters nothing, and counts and logs the refusal without the email', async () => {
    // Prepare: Customer.io refuses the `rewarded` status after the fulfilment event was accepted
    const ledger = new MemoryLedger();
    let n = 0;
    const fulfilDeps = async (): Promise<FulfilDeps> => ({
      ledger,
      shopify: new FakeShop(),
      customerio: fakeCustomerIo(),
      rewardAmount: '25.00',
      customerioEvent: 'referral_fulfilled',
      newCode: () => `CODE${String(++n).padStart(4, '0')}`,
      customerioEventId: (eventId) => `cio-${eventId}`,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
      status: {
        sendStatus: async () => {
          throw new PermanentError('customerio_rejected', 'Customer.io rejected the event: redeemer@example.com is not a valid identifier');
        },
      },
    });
    const handler = makeWorkerHandler({
      sqs: new SQSClient({}),
      ledger: new MemoryLedger(),
      deadLetterQueueUrl: 'https://sqs.example/dlq',
      queueUrl: 'https://sqs.example/queue',
      visibilityTimeoutSeconds: 360,
      maxReceiveCount: 5,
      fulfilDeps,
    });
    const addMetric = jest.spyOn(metrics, 'addMetric');
    const logError = jest.spyOn(logger, 'error').mockImplementation(() => undefined);

    // Act
    const response = await handler(batch(sqsRecord(JSON.stringify(REFERRAL))), lambdaContext('referral-rewards-worker', 30_000));

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect((await ledger.get(REFERRAL.eventId))?.status).toBe('COMPLETED');
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(0);
    expect(addMetric).toHaveBeenCalledWith('StatusAnnouncementsFailed', 'Count', 1);
    const [message, extra] = logError.mock.calls.find(([text]) => String(text).includes('status announcement')) ?? [];
    expect(message).toBe('status announcement refused; the referral goes on without it');
    expect(extra).toMatchObject({ referral: REFERRAL.eventId, status: 'rewarded', reason: 'customerio_rejected' });
    expect(JSON.stringify(extra)).not.toContain('redeemer@example.com');
    addMetric.mockRestore();
    logError.mockRestore();
  });
});
