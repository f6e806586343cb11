import { DISCOUNT_DEACTIVATE_MUTATION, GIFT_CARD_DEACTIVATE_MUTATION } from './deactivation';
import { DISCOUNT_CREATE_MUTATION, DISCOUNT_FIND_QUERY } from './discount-codes';
import { FIND_GIFT_CARD_QUERY, GIFT_CARD_CREATE_MUTATION, SHOP_CURRENCY_QUERY } from './gift-cards';

/**
 * Every GraphQL document lib/ sends, by operation name: tests/unit/shopify-schema.test.ts validates
 * each against Shopify's published schema. Nothing the worker runs imports this file, so the
 * deactivation documents stay out of its bundle (tests/unit/worker-import-graph.test.ts).
 */
export const SHOPIFY_DOCUMENTS = {
  GiftCardCreate: GIFT_CARD_CREATE_MUTATION,
  FindGiftCard: FIND_GIFT_CARD_QUERY,
  ShopCurrency: SHOP_CURRENCY_QUERY,
  DiscountCodeCreate: DISCOUNT_CREATE_MUTATION,
  FindDiscountCode: DISCOUNT_FIND_QUERY,
  GiftCardDeactivate: GIFT_CARD_DEACTIVATE_MUTATION,
  DiscountCodeDeactivate: DISCOUNT_DEACTIVATE_MUTATION,
} as const;
