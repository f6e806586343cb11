import {
  loadIngestConfig,
  loadObservabilityConfig,
  loadReleaserConfig,
  loadWorkerConfig,
  loadWorkerRuntimeConfig,
  type Env,
} from '../../lib/infra/config';
import { PermanentError } from '../../lib/domain/errors';
import { thrown } from '../support/failure';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';

/** What serverless.yml gives every worker container. */
const RUNTIME_ENV: Env = {
  TABLE_NAME: 'referral-rewards-ledger',
  DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-dlq',
  MAX_RECEIVE_COUNT: '5',
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
  QUEUE_VISIBILITY_TIMEOUT: '360',
};

const INGEST_ENV: Env = {
  WEBHOOK_SECRET: 'webhook-secret-0123456789abcdefghij',
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
};

const permanentError = (fn: () => unknown): PermanentError => thrown(fn, PermanentError);

describe('loadWorkerRuntimeConfig', () => {
  it('reads the table, the DLQ and the redrive count, with DRY_RUN off by default', () => {
    // Act
    const config = loadWorkerRuntimeConfig(RUNTIME_ENV);

    // Assess
    expect(config).toEqual({
      tableName: RUNTIME_ENV.TABLE_NAME,
      deadLetterQueueUrl: RUNTIME_ENV.DLQ_URL,
      maxReceiveCount: 5,
      dryRun: false,
      queueUrl: RUNTIME_ENV.QUEUE_URL,
      visibilityTimeoutSeconds: 360,
      workerContainers: 1,
    });
  });

  it('takes 5 receives when MAX_RECEIVE_COUNT is unset, as the queue is deployed', () => {
    // Act
    const config = loadWorkerRuntimeConfig({ ...RUNTIME_ENV, MAX_RECEIVE_COUNT: undefined });

    // Assess
    expect(config.maxReceiveCount).toBe(5);
  });

  it.each(['5x', '0', '-1', '2.5', '1001'])('refuses MAX_RECEIVE_COUNT=%p rather than reading NaN or an impossible count', (value) => {
    // Act
    const error = permanentError(() => loadWorkerRuntimeConfig({ ...RUNTIME_ENV, MAX_RECEIVE_COUNT: value }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain('MAX_RECEIVE_COUNT');
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['', false],
  ])('reads DRY_RUN=%p as %p', (value, expected) => {
    // Act
    const config = loadWorkerRuntimeConfig({ ...RUNTIME_ENV, DRY_RUN: value });

    // Assess
    expect(config.dryRun).toBe(expected);
  });

  it('refuses a DRY_RUN it cannot read instead of paying for real', () => {
    // Act
    const error = permanentError(() => loadWorkerRuntimeConfig({ ...RUNTIME_ENV, DRY_RUN: 'ture' }));

    // Assess
    expect(error.message).toContain('DRY_RUN must be true or false');
  });

  it.each(['TABLE_NAME', 'DLQ_URL'])('refuses a missing %s, naming it', (name) => {
    // Act
    const error = permanentError(() => loadWorkerRuntimeConfig({ ...RUNTIME_ENV, [name]: ' ' }));

    // Assess
    expect(error.message).toContain(`${name} is not set`);
  });
});

describe('loadWorkerConfig', () => {
  it('leaves the table and DLQ to the runtime config: fulfilment does not need them', () => {
    // Act
    const config = loadWorkerConfig({
      SHOPIFY_STORE_DOMAIN: 'example-shop.myshopify.com',
      SHOPIFY_ACCESS_TOKEN: 'shpat_test_token',
      CUSTOMERIO_SITE_ID: 'site-id',
      CUSTOMERIO_API_KEY: 'api-key',
      REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY,
    });

    // Assess
    expect(config).not.toHaveProperty('tableName');
    expect(config).not.toHaveProperty('deadLetterQueueUrl');
  });
});

describe('loadIngestConfig: WEBHOOK_SIGNING_SECRET', () => {
  it('accepts a whsec_ secret', () => {
    // Prepare
    const secret = `whsec_${Buffer.from('a-signing-key-of-32-bytes-random!!').toString('base64')}`;

    // Act
    const config = loadIngestConfig({ ...INGEST_ENV, WEBHOOK_SIGNING_SECRET: secret });

    // Assess
    expect(config.webhookSigningSecret).toBe(secret);
  });

  it('refuses an unusable one with config_invalid, naming it without echoing it', () => {
    // Act
    const error = permanentError(() => loadIngestConfig({ ...INGEST_ENV, WEBHOOK_SIGNING_SECRET: 'whsec_***not-base64***' }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain('WEBHOOK_SIGNING_SECRET');
    expect(error.message).not.toContain('not-base64');
  });
});

describe('loadReleaserConfig', () => {
  it('reads the table and the work queue', () => {
    // Act
    const config = loadReleaserConfig({ TABLE_NAME: 'ledger', QUEUE_URL: 'https://sqs.example/queue' });

    // Assess
    expect(config).toEqual({ tableName: 'ledger', queueUrl: 'https://sqs.example/queue' });
  });

  it('names both when neither is set', () => {
    // Act
    const error = permanentError(() => loadReleaserConfig({}));

    // Assess
    expect(error.message).toContain('TABLE_NAME is not set');
    expect(error.message).toContain('QUEUE_URL is not set');
  });
});

describe('loadObservabilityConfig', () => {
  it("uses the deployed service name and namespace, else the project's", () => {
    // Act
    const deployed = loadObservabilityConfig({ POWERTOOLS_SERVICE_NAME: 'referral-rewards-prod', POWERTOOLS_METRICS_NAMESPACE: 'Rewards' });
    const local = loadObservabilityConfig({});

    // Assess
    expect(deployed).toEqual({ serviceName: 'referral-rewards-prod', metricsNamespace: 'Rewards' });
    expect(local).toEqual({ serviceName: 'referral-rewards', metricsNamespace: 'ReferralRewards' });
  });
});
