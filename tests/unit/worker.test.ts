import { ChangeMessageVisibilityCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { PermanentError, RetryableError } from '../../lib/domain/errors';
import type { Referral } from '../../lib/domain/referral';
import type { FulfilDeps } from '../../lib/domain/rewards';
import { makeWorkerHandler } from '../../functions/worker';
import { lambdaContext } from '../../local/lambda-context';
import { logger, metrics } from '../../lib/infra/observability';
import { MemoryLedger } from '../support/memory-ledger';
import { FakeShop } from '../support/fake-shop';
import { batch, fakeCustomerIo, sqsRecord } from '../support/worker';

const EVENT_ID = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61';
const OTHER_EVENT_ID = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a62';
const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-dlq';
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue';
const VISIBILITY_TIMEOUT_SECONDS = 360;
const MAX_RECEIVE_COUNT = 5;

const sqsMock = mockClient(SQSClient);

function referralBody(eventId = EVENT_ID): string {
  const referral: Referral = {
    v: 1,
    eventId,
    eventName: 'referral redeemed',
    referrerEmail: 'referrer@example.com',
    redeemerEmail: 'redeemer@example.com',
    customerEmail: 'redeemer@example.com',
  };
  return JSON.stringify(referral);
}

function setup(options: { fulfilDeps?: () => Promise<FulfilDeps>; rules?: FulfilDeps['rules'] } = {}) {
  const memory = new MemoryLedger();
  const shopify = new FakeShop();
  const customerio = fakeCustomerIo();
  // The handler's own ledger handle only records failures and releases leases: a second twin, watched.
  const handlerLedger = new MemoryLedger();
  // Its only write is a release (lib/domain/steps.ts `release`).
  const ledger = { fail: jest.spyOn(handlerLedger, 'fail'), release: jest.spyOn(handlerLedger, 'write') };
  let n = 0;
  const fulfilDeps = jest.fn(
    options.fulfilDeps ??
      (async (): Promise<FulfilDeps> => ({
        ledger: memory,
        shopify,
        customerio,
        rewardAmount: '25.00',
        customerioEvent: 'pyramid_scheme_fulfillment',
        newCode: () => `CODE${String(++n).padStart(4, '0')}`,
        customerioEventId: (eventId) => `cio-${eventId}`,
        retry: { baseDelayMs: 1, maxDelayMs: 2 },
        ...(options.rules ? { rules: options.rules } : {}),
      })),
  );
  const handler = makeWorkerHandler({
    sqs: new SQSClient({}),
    ledger: handlerLedger,
    deadLetterQueueUrl: DLQ_URL,
    queueUrl: QUEUE_URL,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
    maxReceiveCount: MAX_RECEIVE_COUNT,
    fulfilDeps,
  });
  const context = lambdaContext('referral-rewards-worker', 30_000);
  return { memory, shopify, customerio, ledger, fulfilDeps, handler, context };
}

/** The messages sent to the dead-letter queue. */
const deadLettered = () => sqsMock.commandCalls(SendMessageCommand).map((call) => call.args[0].input);

beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'dlq-message-1' });
});

describe('worker: a referral that can be fulfilled', () => {
  it('creates two gift cards, sends one Customer.io event and reports no failures', async () => {
    // Prepare
    const { shopify, customerio, handler, context } = setup();

    // Act
    const response = await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(shopify.creates).toHaveLength(2);
    expect(customerio.sendFulfilment).toHaveBeenCalledTimes(1);
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('completes the referral in the ledger', async () => {
    // Prepare
    const { memory, handler, context } = setup();

    // Act
    await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(memory.records.get(EVENT_ID)?.status).toBe('COMPLETED');
  });

  it('acknowledges a duplicate delivery without creating anything again', async () => {
    // Prepare
    const { shopify, customerio, handler, context } = setup();
    await handler(batch(sqsRecord(referralBody(), { messageId: 'message-1' })), context);

    // Act
    const response = await handler(batch(sqsRecord(referralBody(), { messageId: 'message-2' })), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(shopify.creates).toHaveLength(2);
    expect(customerio.sendFulfilment).toHaveBeenCalledTimes(1);
  });
});

describe('worker: retryable failures', () => {
  it("reports the record's messageId as a batch item failure and dead-letters nothing", async () => {
    // Prepare
    const { shopify, handler, context } = setup();
    shopify.fault(new RetryableError('Shopify answered 503'));

    // Act
    const response = await handler(batch(sqsRecord(referralBody(), { messageId: 'message-7' })), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-7' }] });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('releases the lease with the error before SQS redelivers', async () => {
    // Prepare
    const { shopify, ledger, handler, context } = setup();
    shopify.fault(new RetryableError('Shopify answered 503'));

    // Act
    await handler(batch(sqsRecord(referralBody(), { receiveCount: 2 })), context);

    // Assess
    expect(ledger.release).toHaveBeenCalledWith(
      EVENT_ID,
      `${context.awsRequestId}/message-1`,
      expect.objectContaining({ step: 'release', set: { lastError: 'Shopify answered 503' } }),
    );
    expect(ledger.fail).not.toHaveBeenCalled();
  });

  it('reports only the failing record of a batch', async () => {
    // Prepare
    const { shopify, handler, context } = setup();
    shopify.fault((input) => (input.note.includes(OTHER_EVENT_ID) ? new RetryableError('Shopify answered 503') : undefined));

    // Act
    const response = await handler(
      batch(sqsRecord(referralBody(EVENT_ID), { messageId: 'good' }), sqsRecord(referralBody(OTHER_EVENT_ID), { messageId: 'bad' })),
      context,
    );

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'bad' }] });
  });

  it('reports a batch item failure when loading the config fails transiently', async () => {
    // Prepare
    const { handler, context } = setup({
      fulfilDeps: async () => {
        throw new RetryableError('Secrets Manager did not answer');
      },
    });

    // Act
    const response = await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-1' }] });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });
});

describe('worker: the last receive', () => {
  it('records retries_exhausted in the ledger and still reports the failure, leaving the DLQ move to SQS', async () => {
    // Prepare
    const { shopify, ledger, handler, context } = setup();
    shopify.fault(new RetryableError('Shopify answered 503'));

    // Act
    const response = await handler(batch(sqsRecord(referralBody(), { receiveCount: MAX_RECEIVE_COUNT })), context);

    // Assess
    expect(ledger.fail).toHaveBeenCalledWith(EVENT_ID, `${context.awsRequestId}/message-1`, 'retries_exhausted', 'Shopify answered 503');
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-1' }] });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('does not record retries_exhausted before the last receive', async () => {
    // Prepare
    const { shopify, ledger, handler, context } = setup();
    shopify.fault(new RetryableError('Shopify answered 503'));

    // Act
    await handler(batch(sqsRecord(referralBody(), { receiveCount: MAX_RECEIVE_COUNT - 1 })), context);

    // Assess
    expect(ledger.fail).not.toHaveBeenCalled();
  });
});

describe('worker: when a failed record is delivered again', () => {
  /** The VisibilityTimeout of each ChangeMessageVisibility the worker sent. */
  const visibilitySet = () => sqsMock.commandCalls(ChangeMessageVisibilityCommand).map((call) => call.args[0].input);

  afterEach(() => jest.restoreAllMocks());

  it("brings a referral waiting on another referral's undecided claim back within seconds", async () => {
    // Prepare: another referral claimed the redeemer and has not decided yet
    const { memory, handler, context } = setup({
      rules: { maxRewardsPerReferrer: 0, blockedDomains: [], referralSignatures: { mode: 'off' } },
    });
    memory.redeemers.set('redeemer@example.com', OTHER_EVENT_ID);
    jest.spyOn(Math, 'random').mockReturnValue(0.5);

    // Act
    const response = await handler(batch(sqsRecord(referralBody(), { messageId: 'waiting' })), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'waiting' }] });
    expect(visibilitySet()).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: 'receipt-waiting', VisibilityTimeout: 6 }]);
  });

  it("brings a THROTTLED referral back after the bucket's refill time", async () => {
    // Prepare: the refill outlasts this invocation, so the in-invocation retry gives up at once
    const { shopify, handler, context } = setup();
    shopify.fault(new RetryableError('shopify giftCardCreate: throttled (HTTP 200)', { retryAfterMs: 40_000 }));
    jest.spyOn(Math, 'random').mockReturnValue(0);

    // Act
    await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(visibilitySet().map((input) => input.VisibilityTimeout)).toEqual([40]);
  });

  it('backs an outage off by receive count', async () => {
    // Prepare
    const { shopify, handler, context } = setup();
    shopify.fault(new RetryableError('Shopify answered 503'));
    jest.spyOn(Math, 'random').mockReturnValue(0);

    // Act
    await handler(batch(sqsRecord(referralBody(), { receiveCount: 1 })), context);
    await handler(batch(sqsRecord(referralBody(), { receiveCount: 3 })), context);

    // Assess
    expect(visibilitySet().map((input) => input.VisibilityTimeout)).toEqual([15, 60]);
  });

  it("leaves the last receive to the queue's visibility timeout and redrive policy", async () => {
    // Prepare
    const { shopify, handler, context } = setup();
    shopify.fault(new RetryableError('Shopify answered 503'));

    // Act
    await handler(batch(sqsRecord(referralBody(), { receiveCount: MAX_RECEIVE_COUNT })), context);

    // Assess
    expect(sqsMock).not.toHaveReceivedCommand(ChangeMessageVisibilityCommand);
  });

  it('still reports the record failed when its visibility cannot be changed, so SQS redelivers it', async () => {
    // Prepare
    const { shopify, handler, context } = setup();
    shopify.fault(new RetryableError('Shopify answered 503'));
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(new Error('ReceiptHandleIsInvalid'));

    // Act
    const response = await handler(batch(sqsRecord(referralBody(), { messageId: 'message-9' })), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-9' }] });
  });

  it('acknowledges a successful record without touching its visibility', async () => {
    // Prepare
    const { handler, context } = setup();

    // Act
    await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(sqsMock).not.toHaveReceivedCommand(ChangeMessageVisibilityCommand);
  });
});

describe('worker: permanent failures', () => {
  it('dead-letters the original body with the failure reason and does not report it as a batch failure', async () => {
    // Prepare
    const { shopify, handler, context } = setup();
    shopify.fault(new PermanentError('shopify_auth', 'Shopify answered 401'));
    const body = referralBody();

    // Act
    const response = await handler(batch(sqsRecord(body)), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    const [message] = deadLettered();
    expect(message.QueueUrl).toBe(DLQ_URL);
    expect(message.MessageBody).toBe(body);
    expect(message.MessageAttributes?.failureReason).toEqual({ DataType: 'String', StringValue: 'shopify_auth' });
    expect(message.MessageAttributes?.failureMessage?.StringValue).toBe('Shopify answered 401');
    expect(message.MessageAttributes?.eventId?.StringValue).toBe(EVENT_ID);
  });

  it('records the failure reason in the ledger', async () => {
    // Prepare
    const { shopify, ledger, handler, context } = setup();
    shopify.fault(new PermanentError('shopify_auth', 'Shopify answered 401'));

    // Act
    await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(ledger.fail).toHaveBeenCalledTimes(1);
    expect(ledger.fail).toHaveBeenCalledWith(EVENT_ID, `${context.awsRequestId}/message-1`, 'shopify_auth', 'Shopify answered 401');
    expect(ledger.release).not.toHaveBeenCalled();
  });

  it('still dead-letters when the ledger cannot record the failure', async () => {
    // Prepare
    const { shopify, ledger, handler, context } = setup();
    shopify.fault(new PermanentError('shopify_auth', 'Shopify answered 401'));
    ledger.fail.mockRejectedValue(new RetryableError('ledger: could not record the failure'));

    // Act
    const response = await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
  });

  it('reports a batch item failure when the dead-letter queue refuses the message, so it is not lost', async () => {
    // Prepare
    const { shopify, handler, context } = setup();
    shopify.fault(new PermanentError('shopify_auth', 'Shopify answered 401'));
    sqsMock.on(SendMessageCommand).rejects(new Error('SQS is down'));

    // Act
    const response = await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-1' }] });
  });

  it.each([
    ['not JSON', 'this is not json'],
    ['JSON that is not a referral', JSON.stringify({ v: 2, eventId: EVENT_ID })],
  ])('dead-letters a body that is %s with reason invalid_message, without fulfilling', async (_label, body) => {
    // Prepare
    const { fulfilDeps, handler, context } = setup();

    // Act
    const response = await handler(batch(sqsRecord(body)), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    const [message] = deadLettered();
    expect(message.MessageBody).toBe(body);
    expect(message.MessageAttributes?.failureReason?.StringValue).toBe('invalid_message');
    expect(fulfilDeps).not.toHaveBeenCalled();
  });

  it('dead-letters with reason config_invalid when the configuration is invalid', async () => {
    // Prepare
    const { ledger, handler, context } = setup({
      fulfilDeps: async () => {
        throw new PermanentError('config_invalid', 'configuration: SHOPIFY_ACCESS_TOKEN is not set');
      },
    });

    // Act
    const response = await handler(batch(sqsRecord(referralBody())), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    expect(deadLettered()[0].MessageAttributes?.failureReason?.StringValue).toBe('config_invalid');
    expect(ledger.fail).toHaveBeenCalledWith(
      EVENT_ID,
      expect.any(String),
      'config_invalid',
      expect.stringContaining('SHOPIFY_ACCESS_TOKEN'),
    );
  });
});

describe('worker: a message that differs from the ledger (#10.5)', () => {
  it('counts ReferralMismatch and logs the differing fields masked', async () => {
    // Prepare: the referral is in the ledger; a second message reuses its uuid with other people
    const { handler, context, customerio } = setup();
    await handler(batch(sqsRecord(referralBody())), context);
    const other = JSON.stringify({
      ...JSON.parse(referralBody()),
      redeemerEmail: 'mallory@example.com',
      customerEmail: 'mallory@example.com',
    });
    const addMetric = jest.spyOn(metrics, 'addMetric');
    const warn = jest.spyOn(logger, 'warn');

    // Act
    await handler(batch(sqsRecord(other, { messageId: 'message-2' })), context);

    // Assess
    expect(addMetric).toHaveBeenCalledWith('ReferralMismatch', 'Count', 1);
    const logged = JSON.stringify(warn.mock.calls);
    expect(logged).toContain('m***@example.com');
    expect(logged).not.toContain('mallory@example.com');
    expect(customerio.sendFulfilment).toHaveBeenCalledTimes(1);
    addMetric.mockRestore();
    warn.mockRestore();
  });
});

describe("worker: a redeemer's person event", () => {
  const QUALIFY = 'subscription paid';
  const personEventBody = (overrides: Record<string, unknown> = {}) =>
    JSON.stringify({
      v: 1,
      kind: 'person-event',
      role: 'qualify',
      eventId: OTHER_EVENT_ID,
      eventName: QUALIFY,
      occurredAt: '2026-11-21T10:00:00.000Z',
      distinctId: 'grace',
      ...overrides,
    });
  const withQualification = (base: Awaited<ReturnType<ReturnType<typeof setup>['fulfilDeps']>>): FulfilDeps => ({
    ...base,
    qualification: { qualifyEvent: QUALIFY, withinMs: 86_400_000, revokePaid: false },
    rules: { maxRewardsPerReferrer: 0, blockedDomains: [], referralSignatures: { mode: 'off' } },
  });

  it('acknowledges a qualifying event of a person with no referral, counts it, and never records it as a referral', async () => {
    // Prepare
    const { memory, handler, context, fulfilDeps, ledger } = setup();
    const base = await fulfilDeps();
    fulfilDeps.mockImplementation(async () => withQualification(base));
    // On any Metrics instance: the count is a single metric of its own (its function dimension).
    const addMetric = jest.spyOn(Object.getPrototypeOf(metrics), 'addMetric');

    // Act
    const response = await handler(batch(sqsRecord(personEventBody())), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(addMetric).toHaveBeenCalledWith('QualifyingEventsReceived', 'Count', 1);
    expect(memory.records.size).toBe(0);
    expect(memory.personEvents.get(OTHER_EVENT_ID)?.role).toBe('qualify');
    expect(ledger.fail).not.toHaveBeenCalled();
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
    addMetric.mockRestore();
  });

  it('dead-letters a person event whose time cannot be read, recording nothing in the ledger', async () => {
    // Prepare
    const { handler, context, ledger } = setup();

    // Act
    const response = await handler(batch(sqsRecord(personEventBody({ occurredAt: 'yesterday' }))), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(deadLettered()).toHaveLength(1);
    expect(ledger.fail).not.toHaveBeenCalled();
  });
});
