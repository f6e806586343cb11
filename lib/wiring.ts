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

/** Test and bench seams: any dependency, the fetch every client uses, and `shopifyPacer: false` for an unpaced Shopify client. */
export type FulfilOverrides = Partial<FulfilDeps> & { fetch?: Fetch; shopifyPacer?: false };

/** Builds the fulfilment dependencies from a validated config. Clients are cheap objects; callers cache the result. */
export function createFulfilDeps(config: WorkerConfig, ledger: Ledger, overrides: FulfilOverrides = {}): FulfilDeps {
  const { fetch: fetchImpl, shopifyPacer, ...rest } = overrides;
  const shopify = new ShopifyClient({ ...config.shopify, fetch: fetchImpl, ...(shopifyPacer === false ? { pacer: false } : {}) });
  // Both issuers, one client (one pacer): a referral begun under the other REWARD_TYPE is finished the way it began.
  const issuers = { gift_card: shopify, discount_code: new DiscountCodeRewards(shopify) };
  return {
    ledger,
    shopify: issuers[config.rewardType],
    issuers,
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

/**
 * The fulfilment dependencies per invocation: the config (and the cached secret) re-read each
 * time, the clients rebuilt only when it changed, so per-container state (the Shopify pacer)
 * survives from one invocation to the next.
 */
export function cachedFulfilDeps(
  loadConfig: () => Promise<WorkerConfig>,
  ledger: Ledger,
  overrides: FulfilOverrides = {},
): () => Promise<FulfilDeps> {
  let cached: { key: string; deps: FulfilDeps } | undefined;
  return async () => {
    const config = await loadConfig();
    const key = JSON.stringify(config);
    if (cached?.key !== key) cached = { key, deps: createFulfilDeps(config, ledger, overrides) };
    return cached.deps;
  };
}
