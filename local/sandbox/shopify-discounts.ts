/**
 * The sandbox's discount codes: discountCodeBasicCreate (single-use codes, case-insensitive
 * uniqueness), codeDiscountNodeByCode and discountCodeDeactivate. Pure over the shop's state.
 */
import type { SandboxShop } from './shopify-shop';
import { isObject, parseDecimal, userError, type Json, type UserError } from './shopify-values';

/** A single-use discount code, as discountCodeBasicCreate made it. */
export interface FakeDiscountCode {
  id: string;
  /** stored uppercase: codes are not case sensitive */
  code: string;
  title: string;
  amount: string;
  usageLimit: number | null;
  appliesOncePerCustomer: boolean;
  endsAt: string | null;
  /** ACTIVE, or EXPIRED once discountCodeDeactivate ran. */
  status?: 'ACTIVE' | 'EXPIRED';
}

/** discountCodeBasicCreate(basicCodeDiscount): a fixed-amount code, or the userErrors Shopify gives. */
export function discountCodeBasicCreate(shop: SandboxShop, variables: Json): Json {
  const input = isObject(variables.basicCodeDiscount) ? variables.basicCodeDiscount : undefined;
  const payload = (errors: UserError[], id?: string): Json => ({
    discountCodeBasicCreate: { codeDiscountNode: id ? { id } : null, userErrors: errors },
  });
  if (!input) return payload([userError('MISSING_ARGUMENT', ['basicCodeDiscount'], 'Input is required')]);
  const errors: UserError[] = [];
  const code = input.code;
  if (typeof code !== 'string' || !/^[A-Za-z0-9]{1,255}$/.test(code)) {
    errors.push(userError('INVALID', ['basicCodeDiscount', 'code'], 'Code is invalid'));
  }
  if (typeof input.title !== 'string' || input.title === '') {
    errors.push(userError('BLANK', ['basicCodeDiscount', 'title'], "Title can't be blank"));
  }
  if (!isObject(input.context) && !isObject(input.customerSelection)) {
    errors.push(userError('MISSING_ARGUMENT', ['basicCodeDiscount', 'context'], 'Context is required'));
  }
  const customerGets = isObject(input.customerGets) ? input.customerGets : undefined;
  const value = customerGets && isObject(customerGets.value) ? customerGets.value : undefined;
  const discountAmount = value && isObject(value.discountAmount) ? value.discountAmount : undefined;
  const amount = parseDecimal(discountAmount?.amount);
  if (amount === undefined || amount <= 0) {
    errors.push(
      userError(
        'GREATER_THAN',
        ['basicCodeDiscount', 'customerGets', 'value', 'discountAmount', 'amount'],
        'Amount must be greater than 0',
      ),
    );
  }
  if (errors.length === 0 && typeof code === 'string' && shop.discounts.some((d) => d.code === code.toUpperCase())) {
    errors.push(userError('TAKEN', ['basicCodeDiscount', 'code'], 'Code must be unique. Please try a different code.'));
  }
  if (errors.length > 0 || typeof code !== 'string' || amount === undefined) return payload(errors);
  const discount: FakeDiscountCode = {
    id: `gid://shopify/DiscountCodeNode/${shop.nextId()}`,
    code: code.toUpperCase(),
    title: input.title as string,
    amount: amount.toFixed(2),
    usageLimit: typeof input.usageLimit === 'number' ? input.usageLimit : null,
    appliesOncePerCustomer: input.appliesOncePerCustomer === true,
    endsAt: typeof input.endsAt === 'string' ? input.endsAt : null,
  };
  shop.discounts.push(discount);
  return payload([], discount.id);
}

/** codeDiscountNodeByCode(code): the discount with that code, whatever its case, or null. */
export function codeDiscountNodeByCode(shop: SandboxShop, variables: Json): Json {
  const wanted = typeof variables.code === 'string' ? variables.code.toUpperCase() : undefined;
  const found = shop.discounts.find((d) => d.code === wanted);
  return {
    codeDiscountNodeByCode: found ? { id: found.id, codeDiscount: { __typename: 'DiscountCodeBasic', title: found.title } } : null,
  };
}

/** discountCodeDeactivate(id: ID!): EXPIRED; repeating it answers the same; unknown id: a DiscountUserError, as Shopify's schema names it. */
export function discountCodeDeactivate(shop: SandboxShop, variables: Json): Json {
  const id = typeof variables.id === 'string' ? variables.id : undefined;
  const discount = shop.discounts.find((d) => d.id === id);
  if (!discount)
    return {
      discountCodeDeactivate: { codeDiscountNode: null, userErrors: [userError('INVALID', ['id'], 'Code discount does not exist')] },
    };
  if (discount.status !== 'EXPIRED') shop.onDeactivate?.({ id: discount.id, code: discount.code, kind: 'discount code' });
  discount.status = 'EXPIRED';
  return {
    discountCodeDeactivate: {
      codeDiscountNode: { id: discount.id, codeDiscount: { __typename: 'DiscountCodeBasic', status: 'EXPIRED' } },
      userErrors: [],
    },
  };
}
