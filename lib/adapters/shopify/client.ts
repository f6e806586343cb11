import { DEACTIVATION_DOCUMENTS, deactivateReward, type DeactivatedReward } from './deactivation';
import { DISCOUNT_CODE_DOCUMENTS } from './discount-code-api';
import { GIFT_CARD_DOCUMENTS } from './gift-cards';
import { ShopifyRewardsClient } from './rewards-client';

/**
 * The Shopify Admin API client, in parts: ./transport.ts (the one request: token and 401 renewal,
 * pacing, throttle and error classification), ./gift-cards.ts, ./discount-code-api.ts and
 * ./deactivation.ts. The worker builds ShopifyRewardsClient (issuing only); this class adds
 * revoking for the operator's commands (ops review) and is what everything else imports.
 */
export class ShopifyClient extends ShopifyRewardsClient {
  /** Deactivates a gift card (for good) or a discount code, by the id creation returned; repeating it is harmless. */
  public deactivateReward(id: string): Promise<DeactivatedReward> {
    return deactivateReward(this.transport, id);
  }
}

/**
 * Every GraphQL document this client sends, by operation name: tests/unit/shopify-schema.test.ts
 * validates each against Shopify's published schema, and the sandbox shop validates what it gets.
 */
export const SHOPIFY_DOCUMENTS = {
  ...GIFT_CARD_DOCUMENTS,
  ...DISCOUNT_CODE_DOCUMENTS,
  ...DEACTIVATION_DOCUMENTS,
} as const;

export { ShopifyRewardsClient };
export type { DeactivatedReward };
export { giftCardAmountField, type CreateGiftCardResult, type FoundGiftCard, type GiftCardInput } from './gift-cards';
export type { DiscountCodeInput, FoundDiscountCode } from './discount-code-api';
export type { ShopifyClientOptions, ThrottleStatus } from './transport';
