import { createDiscountCode, findDiscountCodeByCode, type DiscountCodeInput, type FoundDiscountCode } from './discount-code-api';
import { GiftCards, type CreateGiftCardResult, type FoundGiftCard, type GiftCardInput } from './gift-cards';
import type { ShopifyPacer } from './pacing';
import { ShopifyTransport, type ShopifyClientOptions, type ThrottleStatus } from './transport';

/**
 * What the worker needs of Shopify: issuing gift cards and discount codes and finding them by
 * code, over one transport (one token, one pacer). Each method makes exactly one request and maps
 * every outcome onto created/taken/found or a RetryableError/PermanentError. Revoking is not
 * here: ShopifyClient (./client.ts) adds it for the operator, so the worker's bundle never
 * carries it.
 */
export class ShopifyRewardsClient {
  protected readonly transport: ShopifyTransport;
  private readonly giftCards: GiftCards;

  public constructor(options: ShopifyClientOptions) {
    this.transport = new ShopifyTransport(options);
    this.giftCards = new GiftCards(this.transport, options.apiVersion);
  }

  /** The pacer this client's requests wait on, if pacing is on. */
  public get pacer(): ShopifyPacer | undefined {
    return this.transport.pacer;
  }

  /** The bucket as of the last response, so a caller can pace itself before being throttled. */
  public get throttleStatus(): ThrottleStatus | undefined {
    return this.transport.throttleStatus;
  }

  public createGiftCard(input: GiftCardInput): Promise<CreateGiftCardResult> {
    return this.giftCards.create(input);
  }

  /** Every card whose last four characters match, and whether the page could hide more (./gift-cards.ts). */
  public findGiftCardByCode(code: string): Promise<{ matches: FoundGiftCard[]; complete: boolean }> {
    return this.giftCards.findByCode(code);
  }

  public createDiscountCode(input: DiscountCodeInput): Promise<CreateGiftCardResult> {
    return createDiscountCode(this.transport, input);
  }

  public findDiscountCodeByCode(code: string): Promise<FoundDiscountCode | undefined> {
    return findDiscountCodeByCode(this.transport, code);
  }

  /** Read once per client, for the versions whose giftCardCreate takes `initialAmount` (./gift-cards.ts). */
  public shopCurrency(): Promise<string> {
    return this.giftCards.shopCurrency();
  }
}
