import type { RewardIssuer, RewardLookup } from '../../domain/rewards';
import type { ShopifyRewardsClient } from './rewards-client';

/**
 * REWARD_TYPE=discount_code: single-use discount codes behind the same issuer interface as gift
 * cards, so fulfilment (codes persisted first, TAKEN resolved by looking the code up and
 * recognising our note) is one code path for both. The note travels as the discount's title.
 */
export class DiscountCodeRewards implements RewardIssuer {
  public constructor(
    private readonly client: ShopifyRewardsClient,
    private readonly now: () => number = Date.now,
  ) {}

  public createGiftCard(input: { code: string; amount: string; note: string; expiresOn?: string }) {
    return this.client.createDiscountCode({
      code: input.code,
      amount: input.amount,
      title: input.note,
      startsAt: new Date(this.now()).toISOString(),
      // Gift cards expire at the end of their expiresOn day; give discount codes the same last day.
      ...(input.expiresOn ? { endsAt: `${input.expiresOn}T23:59:59Z` } : {}),
    });
  }

  /** Discount codes are read back by their full code: at most one match, and nothing is left unseen. */
  public async findGiftCardByCode(code: string): Promise<RewardLookup> {
    const found = await this.client.findDiscountCodeByCode(code);
    return { matches: found ? [{ id: found.id, note: found.title }] : [], complete: true };
  }
}
