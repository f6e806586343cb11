import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Ledger } from '../../lib/adapters/dynamodb/ledger';
import type { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { statusMessage } from '../../lib/domain/status';
import { loadCustomerIoConfig, loadReleaserConfig, loadWorkerConfig, type Env } from '../../lib/infra/config';
import type { Fetch } from '../../lib/infra/http';
import { createFulfilDeps, releaserDeps } from '../../lib/infra/wiring';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';

const WORKER_ENV: Env = {
  SHOPIFY_BASE_URL: 'https://shop.myshopify.com',
  SHOPIFY_ACCESS_TOKEN: 'shpat_x',
  CUSTOMERIO_TRACK_URL: 'https://track.example',
  CUSTOMERIO_SITE_ID: 'site',
  CUSTOMERIO_API_KEY: 'key-1',
  REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY,
};
const RELEASER_ENV: Env = { TABLE_NAME: 'ledger', QUEUE_URL: 'https://sqs.example/queue' };
const MESSAGE = statusMessage(
  { eventId: '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d', referrerEmail: 'referrer@example.com', redeemerEmail: 'redeemer@example.com' },
  'not_qualified',
);

/** A Customer.io that records each request's URL, event name and credentials. */
function track(): { fetch: Fetch; sent: { url: string; name: string; authorization: string }[] } {
  const sent: { url: string; name: string; authorization: string }[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    const { name } = JSON.parse(String(init.body)) as { name: string };
    sent.push({ url, name, authorization: (init.headers as Record<string, string>).Authorization });
    return Response.json({});
  }) as unknown as Fetch;
  return { fetch, sent };
}

const clients = { sqs: {} as SQSClient, ddb: {} as DynamoDBDocumentClient };
// Never called here: only Customer.io is.
const ADAPTERS = { ledger: {} as Ledger, shopify: {} as ShopifyTransport };
const basic = (key: string): string => `Basic ${Buffer.from(`site:${key}`).toString('base64')}`;

describe("the worker's status sender", () => {
  it('is absent while CUSTOMERIO_STATUS_EVENT is unset', () => {
    // Act
    const deps = createFulfilDeps(loadWorkerConfig(WORKER_ENV), ADAPTERS);

    // Assess
    expect(deps.status).toBeUndefined();
  });

  it("sends CUSTOMERIO_STATUS_EVENT to the redeemer through the worker's Customer.io when it is set", async () => {
    // Prepare
    const { fetch, sent } = track();
    const deps = createFulfilDeps(loadWorkerConfig({ ...WORKER_ENV, CUSTOMERIO_STATUS_EVENT: 'referral_status' }), ADAPTERS, { fetch });

    // Act
    await deps.status?.sendStatus(MESSAGE);

    // Assess
    expect(sent).toEqual([
      {
        url: 'https://track.example/api/v1/customers/redeemer%40example.com/events',
        name: 'referral_status',
        authorization: basic('key-1'),
      },
    ]);
  });
});

describe("the releaser's status sender", () => {
  it("is absent while CUSTOMERIO_STATUS_EVENT is unset, and Customer.io's settings are never read", () => {
    // Prepare
    const customerio = jest.fn(async () => loadCustomerIoConfig(WORKER_ENV));

    // Act
    const deps = releaserDeps(loadReleaserConfig(RELEASER_ENV), { ...clients, customerio });

    // Assess
    expect(deps.status).toBeUndefined();
    expect(customerio).not.toHaveBeenCalled();
  });

  it('reads the credentials when it sends, so a rotated API key is used from the next status on', async () => {
    // Prepare
    const { fetch, sent } = track();
    let env = WORKER_ENV;
    const config = loadReleaserConfig({ ...RELEASER_ENV, CUSTOMERIO_STATUS_EVENT: 'referral_status' });
    const deps = releaserDeps(config, { ...clients, fetch, customerio: async () => loadCustomerIoConfig(env) });

    // Act
    await deps.status?.sendStatus(MESSAGE);
    env = { ...WORKER_ENV, CUSTOMERIO_API_KEY: 'key-2' };
    await deps.status?.sendStatus(MESSAGE);

    // Assess
    expect(sent.map(({ name, authorization }) => [name, authorization])).toEqual([
      ['referral_status', basic('key-1')],
      ['referral_status', basic('key-2')],
    ]);
  });
});
