import { loadWorkerConfig, type Env } from '../../lib/infra/config';
import type { Fetch } from '../../lib/infra/http';
import type { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { cachedFulfilDeps, containerFulfilDeps } from '../../lib/infra/wiring';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';

const ENV: Env = {
  TABLE_NAME: 'ledger',
  DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/dlq',
  SHOPIFY_BASE_URL: 'https://shop.myshopify.com',
  SHOPIFY_CLIENT_ID: 'cid',
  SHOPIFY_CLIENT_SECRET: 'shpss_x',
  SHOPIFY_API_VERSION: '2026-04',
  CUSTOMERIO_SITE_ID: 'site',
  CUSTOMERIO_API_KEY: 'key',
  REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY,
};

/** Counts token grants; answers every Admin API call with a created gift card. */
function shop(): { fetch: Fetch; grants: () => number } {
  let grants = 0;
  const fetchImpl = (async (input: string | URL | Request) => {
    if (String(input).endsWith('/admin/oauth/access_token')) {
      grants++;
      return Response.json({ access_token: `shpat_${grants}`, expires_in: 86_399 });
    }
    return Response.json({
      data: { giftCardCreate: { giftCard: { id: 'gid://shopify/GiftCard/1', lastCharacters: 'WXYZ' }, userErrors: [] } },
    });
  }) as Fetch;
  return { fetch: fetchImpl, grants: () => grants };
}

const CARD = { code: 'REFABCD2345WXYZ', amount: '25.00', note: 'n' };

describe('cachedFulfilDeps: the Shopify token per container', () => {
  it('keeps the token across invocations and across a change of an unrelated setting', async () => {
    // Prepare
    const { fetch, grants } = shop();
    let env = ENV;
    const deps = cachedFulfilDeps(async () => loadWorkerConfig(env), containerFulfilDeps({} as Ledger, false, { fetch }));
    await (await deps()).shopify.createGiftCard(CARD);

    // Act
    await (await deps()).shopify.createGiftCard(CARD);
    env = { ...ENV, REWARD_AMOUNT: '30.00' };
    await (await deps()).shopify.createGiftCard(CARD);

    // Assess
    expect(grants()).toBe(1);
  });

  it('asks for a new token when the credentials change', async () => {
    // Prepare
    const { fetch, grants } = shop();
    let env = ENV;
    const deps = cachedFulfilDeps(async () => loadWorkerConfig(env), containerFulfilDeps({} as Ledger, false, { fetch }));
    await (await deps()).shopify.createGiftCard(CARD);

    // Act
    env = { ...ENV, SHOPIFY_CLIENT_SECRET: 'shpss_rotated' };
    await (await deps()).shopify.createGiftCard(CARD);

    // Assess
    expect(grants()).toBe(2);
  });
});
