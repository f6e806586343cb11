import { PermanentError, RetryableError } from '../../domain/errors';
import type { UserError } from './graphql';
import type { ShopifyTransport } from './transport';

/**
 * Revoking a reward: operator-only (ops review, lib/domain/lifecycle/revoke.ts), so it lives apart
 * from issuing and only ops/ imports it: the worker, which builds the issuers of ./gift-cards.ts and
 * ./discount-codes.ts, neither carries nor could send a deactivation.
 */

// giftCardDeactivate(id: ID!) → GiftCardDeactivatePayload { giftCard, userErrors [GiftCardDeactivateUserError: code
// GIFT_CARD_NOT_FOUND] }; "A deactivated gift card cannot be re-enabled" (shopify.dev, admin-graphql
// mutations/giftCardDeactivate and enums/GiftCardDeactivateUserErrorCode, 2025-01 … 2026-07).
export const GIFT_CARD_DEACTIVATE_MUTATION = `mutation GiftCardDeactivate($id: ID!) {
  giftCardDeactivate(id: $id) {
    giftCard { id enabled deactivatedAt balance { amount currencyCode } }
    userErrors { code field message }
  }
}`;

// discountCodeDeactivate(id: ID!) → DiscountCodeDeactivatePayload { codeDiscountNode, userErrors [DiscountUserError] }
// (shopify.dev, admin-graphql mutations/discountCodeDeactivate; scope write_discounts).
export const DISCOUNT_DEACTIVATE_MUTATION = `mutation DiscountCodeDeactivate($id: ID!) {
  discountCodeDeactivate(id: $id) {
    codeDiscountNode { id codeDiscount { ... on DiscountCodeBasic { status } } }
    userErrors { code field message }
  }
}`;

interface DeactivateData {
  giftCardDeactivate?: {
    giftCard?: { id?: string; enabled?: boolean; balance?: { amount?: string } | null } | null;
    userErrors?: UserError[];
  } | null;
  discountCodeDeactivate?: { codeDiscountNode?: { id?: string } | null; userErrors?: UserError[] } | null;
}

/**
 * Deactivates a gift card (for good) or a discount code, by the id creation returned; repeating it
 * is harmless. For a gift card, answers the balance that was still on it.
 */
export async function deactivateReward(transport: ShopifyTransport, id: string): Promise<{ balanceLeft?: string }> {
  const giftCard = id.startsWith('gid://shopify/GiftCard/');
  const operation = giftCard ? 'giftCardDeactivate' : 'discountCodeDeactivate';
  const data = await transport.request<DeactivateData>(
    operation,
    giftCard ? GIFT_CARD_DEACTIVATE_MUTATION : DISCOUNT_DEACTIVATE_MUTATION,
    { id },
    [],
  );
  const payload = giftCard ? data.giftCardDeactivate : data.discountCodeDeactivate;
  if (!payload) throw new RetryableError(`shopify ${operation}: response without a payload`);
  const errors = payload.userErrors ?? [];
  if (errors.some((e) => e.code === 'INTERNAL_ERROR')) throw new RetryableError(`shopify ${operation}: INTERNAL_ERROR`);
  if (errors.length > 0) {
    const first = errors[0] as UserError;
    throw new PermanentError(
      `shopify_${(first.code ?? 'user_error').toLowerCase()}`,
      `shopify ${operation} ${id} refused: ${transport.redact(first.message ?? '', [])}`,
    );
  }
  if (giftCard) {
    const card = data.giftCardDeactivate?.giftCard;
    if (card?.enabled !== false) throw new RetryableError(`shopify ${operation}: the card is not reported deactivated`);
    return { balanceLeft: card.balance?.amount };
  }
  if (!data.discountCodeDeactivate?.codeDiscountNode?.id) throw new RetryableError(`shopify ${operation}: response without the discount`);
  return {};
}
