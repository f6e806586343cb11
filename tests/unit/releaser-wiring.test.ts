import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { OutcomeCapture } from '../../lib/domain/notify-ports';
import { loadCustomerIoConfig, loadPostHogCaptureConfig, loadReleaserConfig, loadShopifyConfig, type Env } from '../../lib/infra/config';
import type { Fetch } from '../../lib/infra/http';
import { releaserDeps } from '../../lib/infra/wiring';

/**
 * The deployed releaser has no key of its own: what it captures (PostHog) and deactivates (Shopify)
 * goes out with the worker's settings, read when used, and only while a setting makes it do so.
 */
const WORKER_ENV: Env = {
  SHOPIFY_BASE_URL: 'https://shop.myshopify.com',
  SHOPIFY_ACCESS_TOKEN: 'shpat_releaser_test_token',
  CUSTOMERIO_SITE_ID: 'site',
  CUSTOMERIO_API_KEY: 'key-1',
  POSTHOG_API_KEY: 'phc_first',
  POSTHOG_HOST: 'https://eu.i.posthog.com',
};
const RELEASER_ENV: Env = { TABLE_NAME: 'ledger', QUEUE_URL: 'https://sqs.example/queue' };
const CAPTURE: OutcomeCapture = {
  outcome: 'not_qualified',
  eventId: '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d',
  distinctId: 'grace',
  referrerEmail: 'ada@example.com',
  redeemerEmail: 'grace@example.org',
  rewardType: 'gift_card',
  rewardAmount: '25.00',
};

/** Records each request's URL and body; answers PostHog's capture and Shopify's giftCardDeactivate. */
function vendors(): { fetch: Fetch; sent: { url: string; body: Record<string, unknown>; headers: Record<string, string> }[] } {
  const sent: { url: string; body: Record<string, unknown>; headers: Record<string, string> }[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    sent.push({ url, body: JSON.parse(String(init.body)) as Record<string, unknown>, headers: init.headers as Record<string, string> });
    if (!url.includes('graphql')) return Response.json({ status: 1 });
    return Response.json({
      data: {
        giftCardDeactivate: { giftCard: { id: 'gid://shopify/GiftCard/1', enabled: false, balance: { amount: '25.0' } }, userErrors: [] },
      },
      extensions: {
        cost: { requestedQueryCost: 10, throttleStatus: { currentlyAvailable: 1990, maximumAvailable: 2000, restoreRate: 100 } },
      },
    });
  }) as unknown as Fetch;
  return { fetch, sent };
}

const clients = { sqs: {} as SQSClient, ddb: {} as DynamoDBDocumentClient };

function readers(env: () => Env) {
  return {
    customerio: jest.fn(async () => loadCustomerIoConfig(env())),
    posthog: jest.fn(async () => loadPostHogCaptureConfig(env())),
    shopify: jest.fn(async () => loadShopifyConfig(env())),
  };
}

describe("the releaser's captures and deactivations", () => {
  it("neither captures nor deactivates, nor reads the worker's settings, while QUALIFY_EVENT is unset and REVOKE_PAID is false", () => {
    // Prepare
    const read = readers(() => WORKER_ENV);

    // Act
    const deps = releaserDeps(loadReleaserConfig(RELEASER_ENV), { ...clients, ...read });

    // Assess
    expect(deps.posthog).toBeUndefined();
    expect(deps.shopify).toBeUndefined();
    expect([read.customerio, read.posthog, read.shopify].flatMap((reader) => reader.mock.calls)).toEqual([]);
  });

  it("captures with the worker's PostHog key while QUALIFY_EVENT is set, reading it at each capture (a rotated key is used)", async () => {
    // Prepare
    const { fetch, sent } = vendors();
    let env = WORKER_ENV;
    const deps = releaserDeps(loadReleaserConfig({ ...RELEASER_ENV, QUALIFY_EVENT: 'subscription paid' }), {
      ...clients,
      ...readers(() => env),
      fetch,
    });

    // Act
    await deps.posthog?.track(CAPTURE);
    env = { ...WORKER_ENV, POSTHOG_API_KEY: 'phc_second' };
    await deps.posthog?.track(CAPTURE);

    // Assess
    expect(deps.shopify).toBeUndefined();
    expect(sent.map(({ url, body }) => [new URL(url).origin, body.api_key, body.event])).toEqual([
      ['https://eu.i.posthog.com', 'phc_first', 'referral reward not_qualified'],
      ['https://eu.i.posthog.com', 'phc_second', 'referral reward not_qualified'],
    ]);
  });

  it('captures nothing when the worker has no POSTHOG_API_KEY', async () => {
    // Prepare
    const { fetch, sent } = vendors();
    const { POSTHOG_API_KEY: _unset, ...withoutKey } = WORKER_ENV;
    const deps = releaserDeps(loadReleaserConfig({ ...RELEASER_ENV, QUALIFY_EVENT: 'subscription paid' }), {
      ...clients,
      ...readers(() => withoutKey),
      fetch,
    });

    // Act
    await deps.posthog?.track(CAPTURE);

    // Assess
    expect(sent).toEqual([]);
  });

  it("deactivates with the worker's Shopify credentials while REVOKE_PAID is true, and captures the revoke", async () => {
    // Prepare
    const { fetch, sent } = vendors();
    const deps = releaserDeps(loadReleaserConfig({ ...RELEASER_ENV, REVOKE_PAID: 'true' }), {
      ...clients,
      ...readers(() => WORKER_ENV),
      fetch,
    });

    // Act
    const result = await deps.shopify?.deactivateReward('gid://shopify/GiftCard/1');

    // Assess
    expect(deps.posthog).toBeDefined();
    expect(result).toEqual({ balanceLeft: '25.0' });
    expect(sent.map(({ url, headers }) => [url, headers['X-Shopify-Access-Token']])).toEqual([
      ['https://shop.myshopify.com/admin/api/2026-10/graphql.json', 'shpat_releaser_test_token'],
    ]);
  });
});
