import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { makeWorkerHandler } from '../../functions/worker';
import { dryRunFulfil, type DryRunLog } from '../../lib/domain/dry-run';
import { Ledger, referralKey, type LedgerRecord } from '../../lib/adapters/dynamodb/ledger';
import { maskCode } from '../../lib/infra/mask';
import type { Referral } from '../../lib/domain/referral';
import type { FulfilDeps } from '../../lib/domain/rewards';
import { lambdaContext } from '../../local/lambda-context';
import { FakeShop } from '../support/fake-shop';
import { batch, fakeCustomerIo, sqsRecord } from '../support/worker';

const EVENT_ID = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61';
const TABLE = 'referral-rewards-test-ledger';
const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-test-dlq';

const REFERRAL: Referral = {
  v: 1,
  eventId: EVENT_ID,
  eventName: 'referral redeemed',
  referrerEmail: 'alice.referrer@example.com',
  redeemerEmail: 'bob.redeemer@example.com',
  customerEmail: 'bob.redeemer@example.com',
};

const ddbMock = mockClient(DynamoDBDocumentClient);
const sqsMock = mockClient(SQSClient);

function record(overrides: Partial<LedgerRecord> = {}): LedgerRecord {
  return {
    pk: referralKey(EVENT_ID),
    eventId: EVENT_ID,
    status: 'IN_PROGRESS',
    referrerEmail: REFERRAL.referrerEmail,
    redeemerEmail: REFERRAL.redeemerEmail,
    customerEmail: REFERRAL.customerEmail,
    referrerCode: 'REFCODE7XQ2',
    redeemerCode: 'REDCODE9WZ4',
    customerioEventId: 'cio-1',
    rewardType: 'gift_card',
    rewardAmount: '25.00',
    attempts: 1,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

/** A worker in dry-run mode over a real Ledger whose DynamoDB client is mocked: every write would show up as a command. */
function setup(options: { dryRun?: boolean; rules?: FulfilDeps['rules'] } = {}) {
  const ledger = new Ledger(DynamoDBDocumentClient.from(new DynamoDBClient({})), TABLE);
  const shopify = new FakeShop();
  const customerio = fakeCustomerIo();
  const posthog = { track: jest.fn(async () => undefined) };
  const fulfilDeps = async (): Promise<FulfilDeps> => ({
    ledger,
    shopify,
    customerio,
    posthog,
    rules: options.rules,
    rewardAmount: '25.00',
    customerioEvent: 'pyramid_scheme_fulfillment',
    newCode: () => 'NEWCODE0001',
    customerioEventId: () => 'cio-1',
    retry: { baseDelayMs: 1, maxDelayMs: 2 },
  });
  const handler = makeWorkerHandler({
    sqs: new SQSClient({}),
    ledger,
    deadLetterQueueUrl: DLQ_URL,
    queueUrl: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
    visibilityTimeoutSeconds: 360,
    maxReceiveCount: 5,
    fulfilDeps,
    dryRun: options.dryRun ?? true,
  });
  return { handler, shopify, customerio, posthog, context: lambdaContext('referral-rewards-worker', 30_000) };
}

/** Every DynamoDB command other than a read. */
const ledgerWrites = () => ddbMock.calls().filter((call) => !(call.args[0] instanceof GetCommand));

function captureLog() {
  const lines: { level: string; message: string; extra: Record<string, unknown>[] }[] = [];
  const log: DryRunLog = {
    info: (message, ...extra) => lines.push({ level: 'info', message, extra }),
    warn: (message, ...extra) => lines.push({ level: 'warn', message, extra }),
  };
  return { log, lines, text: () => JSON.stringify(lines) };
}

beforeEach(() => {
  ddbMock.reset();
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'dlq-1' });
});

describe('worker with DRY_RUN', () => {
  it('calls neither Shopify nor Customer.io, writes nothing to the ledger, and parks the message in the DLQ', async () => {
    // Prepare: a referral the ledger has never seen
    ddbMock.on(GetCommand).resolves({});
    const { handler, shopify, customerio, posthog, context } = setup({
      rules: { maxRewardsPerReferrer: 10, blockedDomains: [], referralSignatures: { mode: 'off' } },
    });

    // Act
    const response = await handler(batch(sqsRecord(JSON.stringify(REFERRAL))), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(shopify.creates).toEqual([]);
    expect(shopify.finds).toEqual([]);
    expect(customerio.sendFulfilment).not.toHaveBeenCalled();
    expect(posthog.track).not.toHaveBeenCalled();
    expect(ddbMock).toHaveReceivedCommandWith(GetCommand, { TableName: TABLE, Key: { pk: referralKey(EVENT_ID) } });
    expect(ledgerWrites()).toEqual([]);
    // Parked, so a redrive after the rehearsal pays it: a real referral is never dropped.
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    const parked = sqsMock.commandCalls(SendMessageCommand)[0].args[0].input;
    expect(parked.QueueUrl).toBe(DLQ_URL);
    expect(parked.MessageAttributes?.failureReason?.StringValue).toBe('dry_run');
    expect(JSON.parse(parked.MessageBody!).eventId).toBe(EVENT_ID);
  });

  it('also leaves a half-done referral exactly as it was', async () => {
    // Prepare: the referrer's card exists, the rest is still to do
    ddbMock
      .on(GetCommand)
      .resolves({ Item: record({ referrerCardId: 'gid://shopify/GiftCard/1', referrerCardAt: '2025-01-01T00:00:01.000Z' }) });
    const { handler, shopify, customerio, context } = setup();

    // Act
    const response = await handler(batch(sqsRecord(JSON.stringify(REFERRAL))), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(shopify.creates).toEqual([]);
    expect(customerio.sendFulfilment).not.toHaveBeenCalled();
    expect(ledgerWrites()).toEqual([]);
  });

  it('reports the record as failed (not acknowledged, nothing written) when the ledger cannot be read', async () => {
    // Prepare
    ddbMock.on(GetCommand).rejects(Object.assign(new Error('throttled'), { name: 'ProvisionedThroughputExceededException' }));
    const { handler, shopify, customerio, context } = setup();

    // Act
    const response = await handler(batch(sqsRecord(JSON.stringify(REFERRAL))), context);

    // Assess: SQS redelivers it; nothing was recorded anywhere
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-1' }] });
    expect(shopify.creates).toEqual([]);
    expect(customerio.sendFulfilment).not.toHaveBeenCalled();
    expect(ledgerWrites()).toEqual([]);
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('without DRY_RUN still fulfils the referral (the hook is off by default)', async () => {
    // Prepare: a ledger that accepts every write
    ddbMock.on(GetCommand).resolves({});
    ddbMock.callsFake((input: { UpdateExpression?: string }) => ({
      Attributes: record(input.UpdateExpression?.includes('completedAt') ? { status: 'COMPLETED' } : {}),
    }));
    const { handler, shopify, customerio, context } = setup({ dryRun: false });

    // Act
    const response = await handler(batch(sqsRecord(JSON.stringify(REFERRAL))), context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(shopify.creates).toHaveLength(2);
    expect(customerio.sendFulfilment).toHaveBeenCalledTimes(1);
    expect(ledgerWrites().length).toBeGreaterThan(0);
  });
});

describe('dryRunFulfil', () => {
  it('plans both cards, the Customer.io event and completion for a new referral, with masked emails', async () => {
    // Prepare
    const ledger = { get: jest.fn(async () => undefined) };
    const { log, text } = captureLog();

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log, { rewardAmount: '25.00', customerioEvent: 'pyramid_scheme_fulfillment' });

    // Assess
    expect(plan).toMatchObject({ eventId: EVENT_ID, outcome: 'would-fulfil', ledgerStatus: 'NEW' });
    expect(plan.steps).toHaveLength(4);
    expect(plan.steps[0]).toContain('a***@example.com');
    expect(plan.steps[1]).toContain('b***@example.com');
    expect(plan.steps[2]).toContain('pyramid_scheme_fulfillment');
    for (const output of [JSON.stringify(plan), text()]) {
      expect(output).not.toContain(REFERRAL.referrerEmail);
      expect(output).not.toContain(REFERRAL.redeemerEmail);
    }
  });

  it('plans the Customer.io event for the redeemer, as the real run sends it, not a queued customerEmail', async () => {
    // Prepare: a message queued by the previous release, with the PostHog person as customerEmail
    const ledger = { get: jest.fn(async () => undefined) };
    const { log } = captureLog();

    // Act
    const plan = await dryRunFulfil({ ...REFERRAL, customerEmail: 'zed.person@example.com' }, ledger, log, {
      customerioEvent: 'pyramid_scheme_fulfillment',
    });

    // Assess
    expect(plan.steps[2]).toContain('b***@example.com');
    expect(plan.steps[2]).not.toContain('z***@example.com');
  });

  it('plans only what is left and shows codes already chosen by their last characters only', async () => {
    // Prepare
    const existing = record({ status: 'FAILED', referrerCardId: 'gid://shopify/GiftCard/1', referrerCardAt: '2025-01-01T00:00:01.000Z' });
    const ledger = { get: jest.fn(async () => existing) };
    const { log, text } = captureLog();

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log);

    // Assess
    expect(plan.ledgerStatus).toBe('FAILED');
    expect(plan.steps).toHaveLength(3);
    expect(plan.steps[0]).toContain('redeemer');
    expect(plan.steps[0]).toContain(maskCode(existing.redeemerCode));
    expect(text()).not.toContain(existing.redeemerCode);
    expect(text()).not.toContain(existing.referrerCode);
  });

  it('plans a refusal for a self-referral, and claims nothing', async () => {
    // Prepare
    const ledger = { get: jest.fn(async () => undefined) };
    const { log } = captureLog();
    const self = { ...REFERRAL, redeemerEmail: 'Alice.Referrer@Example.com', customerEmail: 'alice.referrer@example.com' };

    // Act
    const plan = await dryRunFulfil(self, ledger, log, {
      rules: { maxRewardsPerReferrer: 10, blockedDomains: [], referralSignatures: { mode: 'off' } },
      posthog: { track: jest.fn() },
    });

    // Assess
    expect(plan.outcome).toBe('would-refuse');
    expect(plan.steps[0]).toContain('self_referral');
    expect(plan.steps).toContain('capture "referral reward rejected" in PostHog');
    expect(plan.steps.join(' ')).not.toContain('gift card');
  });

  it('plans a refusal for a referral the app did not sign, when signatures are required', async () => {
    // Prepare
    const ledger = { get: jest.fn(async () => undefined) };
    const { log } = captureLog();
    const rules = {
      maxRewardsPerReferrer: 10,
      blockedDomains: [],
      referralSignatures: { mode: 'required' as const, key: 'dry-run-referral-signing-key-0123456789' },
    };

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log, { rules });

    // Assess
    expect(plan.outcome).toBe('would-refuse');
    expect(plan.steps[0]).toContain('unsigned_referral');
  });

  it('mentions the per-person rules it cannot check without writing', async () => {
    // Prepare
    const ledger = { get: jest.fn(async () => undefined) };
    const { log } = captureLog();

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log, {
      rules: { maxRewardsPerReferrer: 3, blockedDomains: [], referralSignatures: { mode: 'off' } },
    });

    // Assess
    expect(plan.outcome).toBe('would-fulfil');
    expect(plan.steps[0]).toContain('at most 3 per referrer');
  });

  it('plans the reward the referral began with, as the real run pays it, not the type configured now', async () => {
    // Prepare: begun as a discount code; REWARD_TYPE has since been switched to gift cards
    const existing = record({ rewardType: 'discount_code', rewardAmount: '10.00' });
    const ledger = { get: jest.fn(async () => existing) };
    const { log } = captureLog();

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log, { rewardType: 'gift_card', rewardAmount: '25.00' });

    // Assess
    expect(plan.steps.slice(0, 2)).toEqual([
      `create a 10.00 Shopify discount code for the referrer a***@example.com with the code already chosen (${maskCode(existing.referrerCode)})`,
      `create a 10.00 Shopify discount code for the redeemer b***@example.com with the code already chosen (${maskCode(existing.redeemerCode)})`,
    ]);
  });

  it('plans nothing for a referral waiting in review: a real run leaves it to the operator', async () => {
    // Prepare
    const ledger = { get: jest.fn(async () => record({ status: 'REVIEW', decision: 'ACCEPTED' })) };
    const { log } = captureLog();

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log, { rewardAmount: '25.00' });

    // Assess
    expect(plan).toEqual({ eventId: EVENT_ID, outcome: 'already-parked', ledgerStatus: 'REVIEW', steps: [] });
  });

  it("plans the rewards for a referral code's owner, as the real run pays them, and refuses a code never issued", async () => {
    // Prepare: code ABCDEFGH23 belongs to carol; the event names only the code
    const store = {
      codeItem: async (code: string) =>
        code === 'ABCDEFGH23' ? { email: 'carol.owner@example.com', canonical: 'carol.owner@example.com' } : undefined,
      codeOf: async (canonical: string) => (canonical === 'carol.owner@example.com' ? 'ABCDEFGH23' : undefined),
    };
    const ledger = { get: jest.fn(async () => undefined) };
    const { log } = captureLog();
    const settings = { rewardAmount: '25.00', referralCodes: { store, required: false } };

    // Act
    const owned = await dryRunFulfil({ ...REFERRAL, referrerEmail: '', referralCode: 'abcdefgh23' }, ledger, log, settings);
    const unknown = await dryRunFulfil({ ...REFERRAL, referrerEmail: '', referralCode: 'ZZZZZZZZ23' }, ledger, log, settings);

    // Assess
    expect(owned.steps[0]).toContain('for the referrer c***@example.com');
    expect(unknown.outcome).toBe('would-refuse');
    expect(unknown.steps[0]).toContain('unknown_referral_code');
  });

  it('says a refused referral would only be acknowledged', async () => {
    // Prepare
    const ledger = { get: jest.fn(async () => record({ status: 'REJECTED', decision: 'REJECTED', rejectionReason: 'self_referral' })) };
    const { log } = captureLog();

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log);

    // Assess
    expect(plan).toEqual({ eventId: EVENT_ID, outcome: 'already-rejected', ledgerStatus: 'REJECTED', steps: [] });
  });

  it('says a completed referral would only be acknowledged', async () => {
    // Prepare
    const ledger = { get: jest.fn(async () => record({ status: 'COMPLETED', completedAt: '2025-01-01T00:00:02.000Z' })) };
    const { log } = captureLog();

    // Act
    const plan = await dryRunFulfil(REFERRAL, ledger, log);

    // Assess
    expect(plan).toEqual({ eventId: EVENT_ID, outcome: 'already-completed', ledgerStatus: 'COMPLETED', steps: [] });
  });
});
