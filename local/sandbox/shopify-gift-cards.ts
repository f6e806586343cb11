/**
 * The sandbox's gift cards: giftCardCreate (code rules, case-insensitive uniqueness, the amount
 * cap), the giftCards search (codes never readable back: last four characters only) and
 * giftCardDeactivate. Pure over the shop's state; the server (./shopify.ts) does auth, schema,
 * faults and the bucket first.
 */
import { randomBytes } from 'node:crypto';
import type { SandboxShop } from './shopify-shop';
import { isObject, parseDecimal, userError, type Json, type UserError } from './shopify-values';

export interface FakeGiftCard {
  /** gid://shopify/GiftCard/<n> */
  id: string;
  /** stored uppercase: codes are not case sensitive */
  code: string;
  initialValue: string;
  currencyCode: string;
  note: string | null;
  expiresOn: string | null;
  createdAt: string;
  /** false once giftCardDeactivate ran (for good: Shopify cannot re-enable a card). */
  enabled?: boolean;
  deactivatedAt?: string | null;
}

const MAX_INITIAL_VALUE = 2000;

/** giftCardCreate(input): a card with the code asked for (or a generated one), or the userErrors Shopify gives. */
export function giftCardCreate(shop: SandboxShop, variables: Json): Json {
  const input = isObject(variables.input) ? variables.input : undefined;
  if (!input) return createPayload(null, null, [userError('MISSING_ARGUMENT', ['input'], 'Input is required')]);

  const code = input.code === undefined || input.code === null ? generateCode() : input.code;
  const errors: UserError[] = [];
  if (typeof code !== 'string') {
    errors.push(userError('INVALID', ['input', 'code'], 'Code is invalid'));
  } else if (code.length < 8) {
    errors.push(userError('TOO_SHORT', ['input', 'code'], 'Code is too short (minimum is 8 characters)'));
  } else if (code.length > 20) {
    errors.push(userError('TOO_LONG', ['input', 'code'], 'Code is too long (maximum is 20 characters)'));
  } else if (!/^[A-Za-z0-9]+$/.test(code)) {
    errors.push(userError('INVALID', ['input', 'code'], 'Code can only contain letters and numbers'));
  }

  // From 2026-07 the amount is `initialAmount: MoneyInput` (initialValue deprecated, still accepted).
  const money = isObject(input.initialAmount) ? input.initialAmount : undefined;
  const amountField = money ? 'initialAmount' : 'initialValue';
  const amount = parseDecimal(money ? money.amount : input.initialValue);
  const currencyCode = money && typeof money.currencyCode === 'string' ? money.currencyCode : shop.currencyCode;
  if (amount === undefined) {
    errors.push(userError('INVALID', ['input', amountField], 'Initial value is invalid'));
  } else if (amount <= 0) {
    errors.push(userError('GREATER_THAN', ['input', amountField], 'Initial value must be greater than 0'));
  } else if (amount > MAX_INITIAL_VALUE) {
    // Shopify documents this code for "value exceeds the allowed limits" (API-issued cards cap at 2,000).
    errors.push(userError('GIFT_CARD_LIMIT_EXCEEDED', ['input', amountField], `Initial value must be at most ${MAX_INITIAL_VALUE}`));
  }

  const expiresOn = input.expiresOn ?? null;
  if (expiresOn !== null && !(typeof expiresOn === 'string' && isIsoDate(expiresOn))) {
    errors.push(userError('INVALID', ['input', 'expiresOn'], 'Expires on is invalid'));
  }
  const note = input.note ?? null;
  if (note !== null && typeof note !== 'string') errors.push(userError('INVALID', ['input', 'note'], 'Note is invalid'));

  if (errors.length === 0 && typeof code === 'string') {
    const upper = code.toUpperCase();
    if (shop.cards.some((card) => card.code === upper)) {
      errors.push(userError('TAKEN', ['input', 'code'], 'Code has already been taken'));
    }
  }
  if (errors.length > 0 || typeof code !== 'string' || amount === undefined) return createPayload(null, null, errors);

  const card: FakeGiftCard = {
    id: `gid://shopify/GiftCard/${shop.nextId()}`,
    code: code.toUpperCase(),
    initialValue: amount.toFixed(2),
    currencyCode,
    note: note as string | null,
    expiresOn: expiresOn as string | null,
    createdAt: new Date().toISOString(),
  };
  shop.cards.push(card);
  shop.onCard?.(card);
  return createPayload(
    {
      id: card.id,
      lastCharacters: card.code.slice(-4),
      initialValue: { amount: card.initialValue, currencyCode: card.currencyCode },
      note: card.note,
      expiresOn: card.expiresOn,
    },
    card.code,
    [],
  );
}

/** giftCards(first, query): the cards a code search finds, as `nodes` and/or `edges` as the query asks. */
export function giftCards(shop: SandboxShop, query: string, variables: Json): Json {
  const first = readIntArgument(query, 'first', variables) ?? 50;
  const searchVariable = /\bquery\s*:\s*\$(\w+)/.exec(query)?.[1];
  const search = searchVariable ? variables[searchVariable] : undefined;
  const wanted = typeof search === 'string' ? parseCodeSearch(search) : undefined;

  const matches = shop.cards.filter((card) => wanted === undefined || card.code === wanted).slice(0, Math.max(0, first));
  // Like Shopify, reads never expose the full code: only the last four characters.
  const nodes = matches.map((card) => ({
    id: card.id,
    note: card.note,
    lastCharacters: card.code.slice(-4),
    enabled: card.enabled !== false,
  }));
  const connection: Json = {};
  if (/\bedges\b/.test(query)) connection.edges = nodes.map((node) => ({ node }));
  if (/\bnodes\b/.test(query) || !connection.edges) connection.nodes = nodes;
  return { giftCards: connection };
}

/** giftCardDeactivate(id: ID!): disabled for good (balance kept, reported); repeating it answers the same; unknown id: GIFT_CARD_NOT_FOUND. */
export function giftCardDeactivate(shop: SandboxShop, variables: Json): Json {
  const id = typeof variables.id === 'string' ? variables.id : undefined;
  const card = shop.cards.find((c) => c.id === id);
  if (!card)
    return { giftCardDeactivate: { giftCard: null, userErrors: [userError('GIFT_CARD_NOT_FOUND', ['id'], 'Gift card not found')] } };
  if (card.enabled !== false) shop.onDeactivate?.({ id: card.id, code: card.code, kind: 'gift card' });
  card.enabled = false;
  card.deactivatedAt ??= new Date().toISOString();
  const balance = { amount: card.initialValue, currencyCode: card.currencyCode };
  return { giftCardDeactivate: { giftCard: { id: card.id, enabled: false, deactivatedAt: card.deactivatedAt, balance }, userErrors: [] } };
}

function createPayload(giftCard: Json | null, giftCardCode: string | null, userErrors: UserError[]): Json {
  return { giftCardCreate: { giftCard, giftCardCode, userErrors } };
}

function isIsoDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
}

/**
 * The code a giftCards search asks for, uppercase. Shopify's documented default search field is
 * the code (a bare term); `code:<code>` is accepted too so a client using either is served.
 */
function parseCodeSearch(search: string): string | undefined {
  const term = search.trim();
  if (term === '') return undefined;
  const fielded = /^code:\s*"?([^"\s]+)"?$/i.exec(term);
  return (fielded ? fielded[1] : term.replace(/^"|"$/g, '')).toUpperCase();
}

/** An Int argument given either inline (`first: 5`) or as a variable (`first: $n`). */
function readIntArgument(query: string, name: string, variables: Json): number | undefined {
  const match = new RegExp(`\\b${name}\\s*:\\s*(?:(\\d+)|\\$(\\w+))`).exec(query);
  if (!match) return undefined;
  const value = match[1] !== undefined ? Number(match[1]) : variables[match[2]];
  return typeof value === 'number' && Number.isInteger(value) ? value : undefined;
}

function generateCode(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}
