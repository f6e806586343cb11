import { DEACTIVATION_DOCUMENTS } from './deactivation';
import { DISCOUNT_CODE_DOCUMENTS } from './discount-codes';
import { GIFT_CARD_DOCUMENTS } from './gift-cards';

/**
 * Every GraphQL document lib/ sends, by operation name: tests/unit/shopify-schema.test.ts validates
 * each against Shopify's published schema. Nothing the worker runs imports this file, so the
 * deactivation documents stay out of its bundle (tests/unit/worker-import-graph.test.ts).
 */
export const SHOPIFY_DOCUMENTS = {
  ...GIFT_CARD_DOCUMENTS,
  ...DISCOUNT_CODE_DOCUMENTS,
  ...DEACTIVATION_DOCUMENTS,
} as const;
