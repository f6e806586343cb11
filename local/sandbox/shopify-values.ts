/** The small GraphQL values every part of the Shopify sandbox answers with. */

export type Json = Record<string, unknown>;

export interface UserError {
  code: string;
  field: string[];
  message: string;
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function userError(code: string, field: string[], message: string): UserError {
  return { code, field, message };
}

export function graphqlError(message: string, code: string): Json {
  return { errors: [{ message, extensions: { code } }] };
}

/** Shopify's Decimal scalar arrives as a string (or a number from lax clients). */
export function parseDecimal(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || !/^-?\d+(\.\d+)?$/.test(value.trim())) return undefined;
  return Number(value);
}
