import { RetryableError } from '../../domain/errors';
import type { RewardIssuer, RewardLookup } from '../../domain/rewards';
import { sendCreate, type UserError } from './graphql';
import type { ShopifyTransport } from './transport';

export interface GiftCardInput {
  code: string;
  /** Decimal string, e.g. "25.00": a float would invite rounding on Shopify's Decimal scalar. */
  amount: string;
  note: string;
  /** YYYY-MM-DD */
  expiresOn?: string;
}

/** What a create did: created, or the code is TAKEN after `sends` sends of the create (ShopifyTransport.send). */
export type CreateGiftCardResult = { status: 'created'; id: string; lastCharacters: string } | { status: 'taken'; sends: number };

/** A look-up's match, with the details Shopify shows of the card. */
export type FoundGiftCard = RewardLookup['matches'][number] & { lastCharacters: string; enabled?: boolean };

/** A RewardIssuer whose answers carry the gift card's details too (the last characters Shopify shows). */
export type GiftCardIssuer = ReturnType<typeof giftCardIssuer>;

export const GIFT_CARD_CREATE_MUTATION = `mutation GiftCardCreate($input: GiftCardCreateInput!) {
  giftCardCreate(input: $input) {
    giftCard { id lastCharacters }
    giftCardCode
    userErrors { code field message }
  }
}`;

/**
 * A full page may hide more matches: findByCode then says the look-up is incomplete.
 * GiftCardConnection has a non-null `pageInfo` (shopify.dev/docs/api/admin-graphql/2025-10/connections/giftcardconnection).
 */
const FIND_PAGE_SIZE = 25;

export const FIND_GIFT_CARD_QUERY = `query FindGiftCard($query: String!) {
  giftCards(first: ${FIND_PAGE_SIZE}, query: $query) {
    nodes { id note lastCharacters enabled }
    pageInfo { hasNextPage }
  }
}`;

export const SHOP_CURRENCY_QUERY = `query ShopCurrency {
  shop { currencyCode }
}`;

/**
 * How giftCardCreate takes the amount in `apiVersion`. From 2026-07 `initialValue: Decimal` is
 * deprecated in favour of `initialAmount: MoneyInput { amount, currencyCode }` (Shopify changelog
 * "Local currency support gift cards now available in the GraphQL Admin API"; the schemas in
 * @shopify/dev-mcp show initialValue as `Decimal!` up to 2026-04 and deprecated from 2026-07).
 * Version names are dates, so they compare as strings; `unstable` is newer than any of them.
 */
export function giftCardAmountField(apiVersion: string): 'initialAmount' | 'initialValue' {
  return apiVersion === 'unstable' || apiVersion >= '2026-07' ? 'initialAmount' : 'initialValue';
}

interface ShopCurrencyData {
  shop?: { currencyCode?: string } | null;
}

interface CreateData {
  giftCard?: { id?: string; lastCharacters?: string } | null;
  userErrors?: UserError[];
}

interface FindData {
  giftCards?: { nodes?: FoundGiftCard[]; pageInfo?: { hasNextPage?: boolean } | null } | null;
}

/** The gift-card issuer (REWARD_TYPE=gift_card) on one transport (one token, one pacer): create a card, find ours by its code. */
export function giftCardIssuer(transport: ShopifyTransport) {
  const amountField = giftCardAmountField(transport.apiVersion);
  let currency: Promise<string> | undefined;

  /**
   * The shop's currency, read once per issuer (so once per container) and only for versions that
   * take `initialAmount`. Read rather than configured: REWARD_AMOUNT is "in the shop's currency",
   * and a card issued in another currency is, by default, not redeemable across currencies
   * (crossCurrencyRedemptionStrategy NONE, Shopify's GiftCardCreateInput docs for 2026-10).
   */
  const shopCurrency = (): Promise<string> => {
    const read = (currency ??= transport.request<ShopCurrencyData>('shop', SHOP_CURRENCY_QUERY, {}, []).then((data) => {
      const code = data.shop?.currencyCode;
      if (typeof code !== 'string' || !/^[A-Z]{3}$/.test(code)) throw new RetryableError('shopify shop: response without a currency code');
      return code;
    }));
    // A failed read is not cached: the next card asks again.
    read.catch(() => {
      if (currency === read) currency = undefined;
    });
    return read;
  };

  const createGiftCard = async (input: GiftCardInput): Promise<CreateGiftCardResult> => {
    const amount =
      amountField === 'initialAmount'
        ? { initialAmount: { amount: input.amount, currencyCode: await shopCurrency() } }
        : { initialValue: input.amount };
    const variables = {
      input: { code: input.code, ...amount, note: input.note, ...(input.expiresOn ? { expiresOn: input.expiresOn } : {}) },
    };
    return sendCreate<CreateData>(transport, 'giftCardCreate', GIFT_CARD_CREATE_MUTATION, variables, input.code, ({ giftCard: card }) => {
      if (!card?.id || typeof card.lastCharacters !== 'string') {
        // Retrying is safe: the code is ours and fixed, so a second attempt answers TAKEN if this one landed.
        throw new RetryableError('shopify giftCardCreate: response without a gift card');
      }
      return { status: 'created', id: card.id, lastCharacters: card.lastCharacters };
    });
  };

  /**
   * Shopify never returns a full code after creation, so "is this code ours?" is answered by
   * searching it and keeping EVERY card whose last four characters match: several cards may share
   * them, and the caller picks ours by its note. `complete` is false when the page came back full
   * (more cards may match than were returned), so the caller never takes "not among these" for
   * "not ours".
   */
  const findGiftCardByCode = async (code: string): Promise<{ matches: FoundGiftCard[]; complete: boolean }> => {
    // Shopify accepts only letters and digits in codes, so anything else cannot exist; refusing it
    // here also keeps search syntax (spaces, colons, OR) from turning the look-up into another query.
    if (!/^[A-Za-z0-9]+$/.test(code)) return { matches: [], complete: true };

    // The documented default search field of giftCards is the code; there is no `code:` filter.
    const data = await transport.request<FindData>('giftCards', FIND_GIFT_CARD_QUERY, { query: code }, [code]);
    const connection = data.giftCards;
    const nodes = connection?.nodes ?? [];
    const last4 = code.slice(-4).toLowerCase();
    const matches = nodes
      .filter((node) => typeof node.lastCharacters === 'string' && node.lastCharacters.toLowerCase() === last4)
      .map((node) => ({ id: node.id, note: node.note ?? null, lastCharacters: node.lastCharacters, enabled: node.enabled }));
    return { matches, complete: connection?.pageInfo?.hasNextPage !== true && nodes.length < FIND_PAGE_SIZE };
  };

  return { createGiftCard, findGiftCardByCode } satisfies RewardIssuer;
}
