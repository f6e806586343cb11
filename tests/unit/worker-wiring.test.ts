import { SQSClient } from '@aws-sdk/client-sqs';
import { documentClient } from '../../lib/infra/aws-clients';
import { loadWorkerConfig, loadWorkerRuntimeConfig, type Env } from '../../lib/infra/config';
import { RetryableError } from '../../lib/domain/errors';
import { Ledger } from '../../lib/adapters/dynamodb/ledger';
import type { ScopedLogger } from '../../lib/infra/observability';
import { cachedFulfilDeps, containerFulfilDeps, createWorkerDeps, stepRetry, workerDepsFrom } from '../../lib/infra/wiring';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';
import { ShopifyPacer } from '../../lib/adapters/shopify/pacing';
import type { Fetch } from '../../lib/infra/http';

const ENV: Env = {
  TABLE_NAME: 'referral-rewards-ledger',
  DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-dlq',
  MAX_RECEIVE_COUNT: '7',
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
  DRY_RUN: 'true',
  SHOPIFY_BASE_URL: 'https://shop.myshopify.com',
  SHOPIFY_ACCESS_TOKEN: 'shpat_x',
  CUSTOMERIO_SITE_ID: 'site',
  CUSTOMERIO_API_KEY: 'key',
  REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY,
};

// Built, never sent: nothing here touches the network.
const clients = () => ({ sqs: new SQSClient({ region: 'us-east-1' }), ddb: documentClient() });

describe('createWorkerDeps', () => {
  it("binds the worker to the runtime config's table, DLQ, redrive count and DRY_RUN", async () => {
    // Prepare: the ledger's reads are caught, never sent
    const built = clients();
    const send = jest.spyOn(built.ddb, 'send').mockImplementation(async () => ({}));

    // Act
    const deps = createWorkerDeps(loadWorkerRuntimeConfig(ENV), async () => loadWorkerConfig(ENV), built);
    await deps.ledger.get('any-referral');

    // Assess
    expect((send.mock.calls[0]?.[0] as { input?: { TableName?: string } }).input?.TableName).toBe(ENV.TABLE_NAME);
    expect(deps).toMatchObject({ deadLetterQueueUrl: ENV.DLQ_URL, maxReceiveCount: 7, dryRun: true });
  });

  it('gives fulfilment and the handler the one ledger it is built on (a simulated crash skips both)', async () => {
    // Prepare
    const runtime = loadWorkerRuntimeConfig(ENV);
    const ledger = new Ledger(clients().ddb, runtime.tableName);
    const build = containerFulfilDeps(ledger, false);

    // Act
    const deps = workerDepsFrom(runtime, {
      sqs: clients().sqs,
      ledger,
      fulfilDeps: cachedFulfilDeps(async () => loadWorkerConfig(ENV), build),
    });
    const fulfil = await deps.fulfilDeps();

    // Assess
    expect(fulfil.ledger).toBe(ledger);
    expect(deps.ledger).toBe(ledger);
  });

  it("gives the container's Shopify pacer 1 / WORKER_MAX_CONCURRENCY of the shop's bucket", async () => {
    // Prepare: the pacer is the one the container's first Shopify request waits on (that request fails offline)
    const acquire = jest.spyOn(ShopifyPacer.prototype, 'acquire');
    const offline = (async () => {
      throw new TypeError('offline');
    }) as unknown as Fetch;
    const deps = createWorkerDeps(loadWorkerRuntimeConfig({ ...ENV, WORKER_MAX_CONCURRENCY: '4' }), async () => loadWorkerConfig(ENV), {
      ...clients(),
      fetch: offline,
    });
    await (await deps.fulfilDeps()).shopify.createGiftCard({ code: 'ABCD2345WXYZ', amount: '25.00', note: 'n' }).catch(() => undefined);
    const pacer = acquire.mock.contexts[0] as ShopifyPacer;
    acquire.mockRestore();

    // Act: the shop reports a full bucket of 1,000 points
    pacer.settle(await pacer.acquire('giftCardCreate'), { currentlyAvailable: 1000, maximumAvailable: 1000, restoreRate: 100 });

    // Assess
    expect(pacer.estimate?.maximumAvailable).toBe(250);
  });

  it('dates with the injected clock', async () => {
    // Prepare
    const now = () => Date.parse('2030-01-01T00:00:00Z');

    // Act
    const deps = createWorkerDeps(loadWorkerRuntimeConfig(ENV), async () => loadWorkerConfig(ENV), { ...clients(), now });

    // Assess
    expect((await deps.fulfilDeps()).now).toBe(now);
  });
});

describe('stepRetry', () => {
  it("keeps the wiring's backoff and logs each retry under the record's logger", () => {
    // Prepare
    const log = { debug: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn() } satisfies ScopedLogger;

    // Act
    const policy = stepRetry({ baseDelayMs: 5 }, log);
    policy.onRetry?.(new RetryableError('shop busy'), 2, 12.7);

    // Assess
    expect(policy.baseDelayMs).toBe(5);
    expect(log.warn).toHaveBeenCalledWith('retrying a step', { attempt: 2, delayMs: 13, error: 'shop busy' });
  });
});
