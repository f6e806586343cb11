import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { makeIngestHandler } from '../../functions/ingest';
import { PermanentError } from '../../lib/domain/errors';
import { loadIngestConfig, loadReconcilerConfig, loadWorkerConfig, MIN_SECRET_LENGTH, type Env } from '../../lib/infra/config';
import { httpApiEvent } from '../../local/apigw';
import { thrown } from '../support/failure';

/** Configuration refuses what is weak: short shared secrets, short HMAC keys, vendor URLs in clear text. */

const INGEST_ENV: Env = {
  WEBHOOK_SECRET: 'a'.repeat(MIN_SECRET_LENGTH),
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
};
const WORKER_ENV: Env = {
  SHOPIFY_STORE_DOMAIN: 'example-shop.myshopify.com',
  SHOPIFY_ACCESS_TOKEN: 'shpat_test',
  CUSTOMERIO_SITE_ID: 'site',
  CUSTOMERIO_API_KEY: 'key',
  REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY,
};
const RECONCILER_ENV: Env = {
  POSTHOG_PROJECT_ID: '12345',
  POSTHOG_PERSONAL_API_KEY: 'phx_test_key',
  RECONCILE_FROM: '2026-07-01T00:00:00Z',
  TABLE_NAME: 'referral-rewards-ledger',
  QUEUE_URL: INGEST_ENV.QUEUE_URL,
};
const whsec = (bytes: number): string => `whsec_${Buffer.alloc(bytes, 7).toString('base64')}`;
const problem = (fn: () => unknown): string => {
  const error = thrown(fn, PermanentError);
  expect(error.reason).toBe('config_invalid');
  return error.message;
};

describe('WEBHOOK_SECRET: at least 32 characters', () => {
  it.each(['x', 'Sh0rtButRand0m-'.padEnd(MIN_SECRET_LENGTH - 1, 'q')])('refuses %j, naming the setting and never echoing it', (secret) => {
    // Act
    const message = problem(() => loadIngestConfig({ ...INGEST_ENV, WEBHOOK_SECRET: secret }));

    // Assess
    expect(message).toContain('WEBHOOK_SECRET is too short');
    expect(message).not.toMatch(/WEBHOOK_SECRET=|Sh0rtButRand0m/);
  });

  it('accepts 32 characters', () => {
    // Act
    const config = loadIngestConfig(INGEST_ENV);

    // Assess
    expect(config.webhookSecret).toHaveLength(MIN_SECRET_LENGTH);
  });

  it('makes ingest answer 503 not_configured and queue nothing (the log line names the setting)', async () => {
    // Prepare
    const sqs = { send: jest.fn() } as unknown as SQSClient;
    const handler = makeIngestHandler({ sqs, config: async () => loadIngestConfig({ ...INGEST_ENV, WEBHOOK_SECRET: 'x' }) });

    // Act
    const response = (await handler(
      httpApiEvent({ body: '{}', headers: { authorization: 'Bearer x' } }),
    )) as APIGatewayProxyStructuredResultV2;

    // Assess
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body ?? '')).toMatchObject({ error: { code: 'not_configured' } });
    expect(sqs.send).not.toHaveBeenCalled();
  });
});

describe('WEBHOOK_SIGNING_SECRET: a key of at least 24 bytes (Standard Webhooks)', () => {
  it.each([1, 16, 23])('refuses a %i-byte key', (bytes) => {
    // Act
    const message = problem(() => loadIngestConfig({ ...INGEST_ENV, WEBHOOK_SIGNING_SECRET: whsec(bytes) }));

    // Assess
    expect(message).toContain('WEBHOOK_SIGNING_SECRET is too short: it must be at least 24 bytes');
    expect(message).not.toContain(whsec(bytes).slice(6));
  });

  it.each([24, 32, 64])('accepts a %i-byte key', (bytes) => {
    // Act
    const config = loadIngestConfig({ ...INGEST_ENV, WEBHOOK_SIGNING_SECRET: whsec(bytes) });

    // Assess
    expect(config.webhookSigningSecret).toBe(whsec(bytes));
  });

  it("accepts the shared Standard Webhooks test vector's secret", () => {
    // Prepare
    const vector = JSON.parse(readFileSync(join(__dirname, '../../../shared/fixtures/standard-webhooks-vector.json'), 'utf8')) as {
      secret: string;
    };

    // Act
    const config = loadIngestConfig({ ...INGEST_ENV, WEBHOOK_SIGNING_SECRET: vector.secret });

    // Assess
    expect(config.webhookSigningSecret).toBe(vector.secret);
  });
});

describe('vendor URLs: https, or plain http only to a loopback host', () => {
  const cases: [string, (url: string) => unknown][] = [
    ['SHOPIFY_BASE_URL', (url) => loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_BASE_URL: url })],
    ['CUSTOMERIO_TRACK_URL', (url) => loadWorkerConfig({ ...WORKER_ENV, CUSTOMERIO_TRACK_URL: url })],
    ['POSTHOG_HOST', (url) => loadWorkerConfig({ ...WORKER_ENV, POSTHOG_API_KEY: 'phc_test', POSTHOG_HOST: url })],
    ['POSTHOG_APP_HOST', (url) => loadReconcilerConfig({ ...RECONCILER_ENV, POSTHOG_APP_HOST: url })],
  ];

  describe.each(cases)('%s', (name, load) => {
    it.each([
      'http://shop.example.com',
      'http://10.0.0.5:8080',
      'http://127.0.0.1.example.com',
      'http://localhost@example.com',
      'ftp://127.0.0.1',
    ])('refuses %s, naming the setting', (url) => {
      // Act
      const message = problem(() => load(url));

      // Assess
      expect(message).toContain(`${name} must be a URL, https (plain http only to 127.0.0.1, localhost or [::1])`);
    });

    it.each(['https://example.com', 'http://127.0.0.1:8788', 'http://localhost:8788', 'http://[::1]:8788'])('accepts %s', (url) => {
      // Act
      const load_ = () => load(url);

      // Assess
      expect(load_).not.toThrow();
    });
  });
});
