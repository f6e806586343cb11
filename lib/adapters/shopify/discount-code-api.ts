import { RetryableError } from '../../domain/errors';
import { classifyUserErrors, type UserError } from './graphql';
import type { CreateGiftCardResult } from './gift-cards';
import type { ShopifyTransport } from './transport';

export interface DiscountCodeInput {
  code: string;
  /** Fixed amount off the order, in the shop's currency. */
  amount: string;
  /** Shown in the admin and at checkout; carries the referral's event uuid so the code can be recognised. */
  title: string;
  startsAt: string;
  endsAt?: string;
}

export interface FoundDiscountCode {
  id: string;
  title: string | null;
}

const DISCOUNT_CREATE_MUTATION = `mutation DiscountCodeCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { code field message }
  }
}`;

const DISCOUNT_FIND_QUERY = `query FindDiscountCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount { ... on DiscountCodeBasic { title } }
  }
}`;

/** The discount-code documents by operation name (SHOPIFY_DOCUMENTS in ./client.ts gathers them all). */
export const DISCOUNT_CODE_DOCUMENTS = {
  DiscountCodeCreate: DISCOUNT_CREATE_MUTATION,
  FindDiscountCode: DISCOUNT_FIND_QUERY,
} as const;

interface DiscountCreateData {
  discountCodeBasicCreate?: { codeDiscountNode?: { id?: string } | null; userErrors?: UserError[] } | null;
}

interface DiscountFindData {
  codeDiscountNodeByCode?: { id?: string; codeDiscount?: { title?: string | null } | null } | null;
}

/**
 * A single-use, fixed-amount discount code for the whole order: the reward for shops that
 * cannot get the gift-card scopes. Usage limit 1 and once per customer, so it pays out once.
 */
export async function createDiscountCode(transport: ShopifyTransport, input: DiscountCodeInput): Promise<CreateGiftCardResult> {
  const variables = {
    basicCodeDiscount: {
      title: input.title,
      code: input.code,
      startsAt: input.startsAt,
      ...(input.endsAt ? { endsAt: input.endsAt } : {}),
      context: { all: 'ALL' },
      customerGets: {
        value: { discountAmount: { amount: input.amount, appliesOnEachItem: false } },
        items: { all: true },
      },
      usageLimit: 1,
      appliesOncePerCustomer: true,
    },
  };
  const secrets = [input.code];
  const data = await transport.request<DiscountCreateData>('discountCodeBasicCreate', DISCOUNT_CREATE_MUTATION, variables, secrets);
  const payload = data.discountCodeBasicCreate;
  if (!payload) throw new RetryableError('shopify discountCodeBasicCreate: response without a payload');
  const userErrors = payload.userErrors ?? [];
  if (userErrors.length > 0) {
    return classifyUserErrors('discountCodeBasicCreate', userErrors, input.code, (message) => transport.redact(message, secrets));
  }
  const id = payload.codeDiscountNode?.id;
  if (!id) throw new RetryableError('shopify discountCodeBasicCreate: response without a discount');
  return { status: 'created', id, lastCharacters: input.code.slice(-4) };
}

/** Discount codes, unlike gift cards, can be read back by code; the title says whose it is. */
export async function findDiscountCodeByCode(transport: ShopifyTransport, code: string): Promise<FoundDiscountCode | undefined> {
  if (!/^[A-Za-z0-9]+$/.test(code)) return undefined;
  const data = await transport.request<DiscountFindData>('codeDiscountNodeByCode', DISCOUNT_FIND_QUERY, { code }, [code]);
  const node = data.codeDiscountNodeByCode;
  if (!node?.id) return undefined;
  return { id: node.id, title: node.codeDiscount?.title ?? null };
}
