import { generateCode } from '../domain/codes';
import type { WorkerConfig } from './config';
import { CustomerIoClient } from '../adapters/customerio';
import type { Fetch } from './http';
import type { Ledger } from '../adapters/dynamodb/ledger';
import type { FulfilDeps } from '../domain/rewards';
import { discountCodeIssuer } from '../adapters/shopify/discount-codes';
import { PostHogCapture } from '../adapters/posthog-capture';
import { giftCardIssuer } from '../adapters/shopify/gift-cards';
import { ShopifyPacer } from '../adapters/shopify/pacing';
import { ShopifyTransport } from '../adapters/shopify/transport';
import { tokenProviderFor, type ShopifyTokenProvider } from '../adapters/shopify/auth';
import { ulidFromUuid } from './ulid';
import { PostHogSharedSignals } from '../adapters/posthog-query';

/**
 * Test and bench seams: any dependency, the fetch every client uses, `shopifyPacer` (false for
 * unpaced Shopify requests, or a pacer the caller watches), and `shopifyAuth` for a token provider
 * that outlives these deps.
 */
export type FulfilOverrides = Partial<FulfilDeps> & {
  fetch?: Fetch;
  shopifyPacer?: ShopifyPacer | false;
  shopifyAuth?: ShopifyTokenProvider;
  /** This container's part of the shop's Shopify budget (1 / the worker's maximum concurrency: lib/infra/shop-sizing.ts). */
  shopifyPacerShare?: number;
};

/** Builds the fulfilment dependencies from a validated config. Clients are cheap objects; callers cache the result. */
export function createFulfilDeps(config: WorkerConfig, ledger: Ledger, overrides: FulfilOverrides = {}): FulfilDeps {
  const { fetch: fetchImpl, shopifyPacer, shopifyAuth, shopifyPacerShare, ...rest } = overrides;
  const { baseUrl, apiVersion } = config.shopify;
  const transport = new ShopifyTransport({
    baseUrl,
    apiVersion,
    auth: shopifyAuth ?? tokenProviderFor(baseUrl, config.shopify.auth, { fetch: fetchImpl }),
    fetch: fetchImpl,
    pacer: shopifyPacer ?? new ShopifyPacer({ share: shopifyPacerShare ?? 1 }),
  });
  // Both issuers, one transport (one token, one pacer): a referral begun under the other REWARD_TYPE is finished the way it began.
  const issuers = { gift_card: giftCardIssuer(transport), discount_code: discountCodeIssuer(transport) };
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
    // Always wired, even with every lifecycle setting off: a referral parked under earlier settings must still be released.
    lifecycle: {
      config: config.lifecycle,
      ledger,
      ...(config.sharedSignalQuery ? { sharedSignals: new PostHogSharedSignals({ ...config.sharedSignalQuery, fetch: fetchImpl }) } : {}),
    },
    referralCodes: { store: ledger.codes, required: config.requireReferralCode },
    qualification: config.qualification,
    ...rest,
  };
}

/**
 * The fulfilment dependencies per invocation: the config (and the cached secret) re-read each
 * time, the clients rebuilt only when it changed, so per-container state (the Shopify pacer, the
 * shop's currency) survives from one invocation to the next. The Shopify token survives even a
 * change of unrelated settings: it is kept per shop and credentials, so a container asks for one
 * token a day, not one per config change.
 */
export function cachedFulfilDeps(
  loadConfig: () => Promise<WorkerConfig>,
  ledger: Ledger,
  overrides: FulfilOverrides = {},
): () => Promise<FulfilDeps> {
  let cached: { key: string; deps: FulfilDeps } | undefined;
  let tokens: { key: string; provider: ShopifyTokenProvider } | undefined;
  return async () => {
    const config = await loadConfig();
    const key = JSON.stringify(config);
    if (cached?.key !== key) {
      const { baseUrl, auth } = config.shopify;
      const tokenKey = JSON.stringify([baseUrl, auth]);
      if (tokens?.key !== tokenKey) tokens = { key: tokenKey, provider: tokenProviderFor(baseUrl, auth, { fetch: overrides.fetch }) };
      cached = { key, deps: createFulfilDeps(config, ledger, { shopifyAuth: tokens.provider, ...overrides }) };
    }
    return cached.deps;
  };
}
