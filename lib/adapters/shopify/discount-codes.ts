import { RetryableError } from '../../domain/errors';
import type { RewardIssuer, RewardLookup } from '../../domain/rewards';
import type { CreateGiftCardResult, GiftCardInput } from './gift-cards';
import { sendCreate, type UserError } from './graphql';
import type { ShopifyTransport } from './transport';

export const DISCOUNT_CREATE_MUTATION = `mutation DiscountCodeCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { code field message }
  }
}`;

export const DISCOUNT_FIND_QUERY = `query FindDiscountCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount { ... on DiscountCodeBasic { title } }
  }
}`;

interface DiscountCreateData {
  codeDiscountNode?: { id?: string } | null;
  userErrors?: UserError[];
}

interface DiscountFindData {
  codeDiscountNodeByCode?: { id?: string; codeDiscount?: { title?: string | null } | null } | null;
}

/**
 * REWARD_TYPE=discount_code: single-use, fixed-amount discount codes for the whole order (for shops
 * that cannot get the gift-card scopes), behind the same issuer interface as gift cards, so
 * fulfilment (codes persisted first, TAKEN resolved by looking the code up and recognising our
 * note) is one code path for both. The note travels as the discount's title. Usage limit 1 and
 * once per customer, so a code pays out once. A create answers as the gift-card issuer's does (the
 * last characters are the code's own).
 */
export function discountCodeIssuer(transport: ShopifyTransport, now: () => number = Date.now): RewardIssuer {
  const createGiftCard = async (input: GiftCardInput): Promise<CreateGiftCardResult> => {
    const variables = {
      basicCodeDiscount: {
        title: input.note,
        code: input.code,
        startsAt: new Date(now()).toISOString(),
        // Gift cards expire at the end of their expiresOn day; give discount codes the same last day.
        ...(input.expiresOn ? { endsAt: `${input.expiresOn}T23:59:59Z` } : {}),
        context: { all: 'ALL' },
        customerGets: { value: { discountAmount: { amount: input.amount, appliesOnEachItem: false } }, items: { all: true } },
        usageLimit: 1,
        appliesOncePerCustomer: true,
      },
    };
    return sendCreate<DiscountCreateData>(
      transport,
      'discountCodeBasicCreate',
      DISCOUNT_CREATE_MUTATION,
      variables,
      input.code,
      (payload) => {
        const id = payload.codeDiscountNode?.id;
        if (!id) throw new RetryableError('shopify discountCodeBasicCreate: response without a discount');
        return { status: 'created', id, lastCharacters: input.code.slice(-4) };
      },
    );
  };

  /** Discount codes, unlike gift cards, are read back by their full code: at most one match, and nothing is left unseen. */
  const findGiftCardByCode = async (code: string): Promise<RewardLookup> => {
    if (!/^[A-Za-z0-9]+$/.test(code)) return { matches: [], complete: true };
    const data = await transport.request<DiscountFindData>('codeDiscountNodeByCode', DISCOUNT_FIND_QUERY, { code }, [code]);
    const node = data.codeDiscountNodeByCode;
    return { matches: node?.id ? [{ id: node.id, note: node.codeDiscount?.title ?? null }] : [], complete: true };
  };

  return { createGiftCard, findGiftCardByCode };
}
