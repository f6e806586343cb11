/** The state the Shopify sandbox's operations read and change: one shop's rewards and its id counter. */
import type { FakeDiscountCode } from './shopify-discounts';
import type { FakeGiftCard } from './shopify-gift-cards';

export interface SandboxShop {
  readonly cards: FakeGiftCard[];
  readonly discounts: FakeDiscountCode[];
  /** The shop's currency, reported by `shop { currencyCode }` and used when a create gives none. */
  readonly currencyCode: string;
  /** The next numeric id: one counter for both kinds, so no two rewards share a number. */
  nextId(): number;
  onCard?: (card: FakeGiftCard) => void;
  onDeactivate?: (reward: { id: string; code: string; kind: 'gift card' | 'discount code' }) => void;
}
