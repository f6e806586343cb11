import { generateCode } from './codes';
import type { WorkerConfig } from './config';
import { CustomerIoClient } from './customerio';
import type { Fetch } from './http';
import type { Ledger } from './ledger';
import type { FulfilDeps } from './rewards';
import { DiscountCodeRewards } from './discount-rewards';
import { PostHogCapture } from './posthog-capture';
import { ShopifyClient } from './shopify';
import { ulidFromUuid } from './ulid';

/** Builds the fulfilment dependencies from a validated config. Clients are cheap objects; callers cache the result. */
export function createFulfilDeps(
  config: WorkerConfig,
  ledger: Ledger,
  overrides: Partial<FulfilDeps> & { fetch?: Fetch } = {},
): FulfilDeps {
  const { fetch: fetchImpl, ...rest } = overrides;
  const shopify = new ShopifyClient({ ...config.shopify, fetch: fetchImpl });
  return {
    ledger,
    shopify: config.rewardType === 'discount_code' ? new DiscountCodeRewards(shopify) : shopify,
    rewardType: config.rewardType,
    customerio: new CustomerIoClient({ ...config.customerio, fetch: fetchImpl }),
    rewardAmount: config.rewardAmount,
    customerioEvent: config.customerio.eventName,
    newCode: () => generateCode(config.rewardCodeLength),
    customerioEventId: (eventId) => ulidFromUuid(eventId),
    rules: config.rules,
    rewardExpiresDays: config.rewardExpiresDays,
    posthog: config.posthog ? new PostHogCapture({ ...config.posthog, fetch: fetchImpl }) : undefined,
    ...rest,
  };
}
