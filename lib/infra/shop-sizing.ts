/**
 * How many worker containers the shop's Shopify budget can keep busy, and each one's share of it.
 *
 * The budget is the GraphQL Admin API's restore rate, by plan
 * (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): Standard 100, Advanced
 * 200, Plus 1,000, Commerce Components (Shopify for enterprise) 2,000 points/s, per app and store.
 * A referral spends two giftCardCreate mutations (or discountCodeBasicCreate), 10 points each as
 * Shopify charges mutations (the same page's cost table; the pacer learns the real cost from
 * each answer's requestedQueryCost), so the shop pays at most restore ÷ 20 referrals/s.
 *
 * Keeping that rate up takes rate × (one referral's time) referrals in flight (Little's law), and a
 * referral's time is its round trips, not CPU: one Shopify round trip (the two cards go side by
 * side), Customer.io's event, PostHog's capture, and the ledger writes between them. A container
 * holds one batch at a time and takes the next only when all its records are done, so the batch
 * takes as long as its slowest record: `headroom` covers that tail and the receive between batches.
 * The answer is Lambda's SQS maximumConcurrency, 2 to 1,000
 * (https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html).
 *
 * Each container's pacer then takes 1 / containers of the restore rate and of the bucket
 * (lib/adapters/shopify/pacing.ts `share`), so all of them together spend at most what the shop
 * restores, instead of each aiming at the whole bucket and being THROTTLED together.
 */

/** GraphQL Admin API restore rates, points/s, by plan (source above). */
export const SHOPIFY_PLAN_RESTORE_RATES = { standard: 100, advanced: 200, plus: 1_000, commerce_components: 2_000 } as const;

export interface ShopSizingInput {
  /** The shop's restore rate, points/s (SHOPIFY_RESTORE_RATE, or what throttleStatus.restoreRate reports). */
  restoreRate: number;
  /** Records per batch (the event source mapping's batchSize). */
  batchSize: number;
  /** Points per mutation; default 10. */
  mutationCost?: number;
  /** Mutations per referral; default 2 (one reward each for the referrer and the redeemer). */
  mutationsPerReferral?: number;
  /** One Shopify round trip, ms; default 300 (AWS to Shopify, measured order of magnitude). */
  shopifyRoundTripMs?: number;
  /** Customer.io's and PostHog's round trips together, ms; default 300 (150 each). */
  notifyRoundTripsMs?: number;
  /** One ledger call, ms; default 5 (DynamoDB in-region). */
  ledgerRoundTripMs?: number;
  /** Ledger calls in one referral's path; default 12 (begin, claims, decision, cards, steps, completion). */
  ledgerCallsPerReferral?: number;
  /** In flight over what the mean needs, for the slowest record of a batch and the receive between batches; default 2. */
  headroom?: number;
}

/**
 * referralsPerSecond (the most the shop's budget pays), referralSeconds (one referral's time at
 * these round trips), recordsInFlight (what the budget needs, with the headroom) and the containers.
 */
export function sizeForShop(input: ShopSizingInput) {
  const {
    restoreRate,
    batchSize,
    mutationCost = 10,
    mutationsPerReferral = 2,
    shopifyRoundTripMs = 300,
    notifyRoundTripsMs = 300,
    ledgerRoundTripMs = 5,
    ledgerCallsPerReferral = 12,
    headroom = 2,
  } = input;
  if (!(restoreRate > 0) || !Number.isFinite(restoreRate))
    throw new Error(`restore rate must be a positive number of points/s, got ${restoreRate}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a whole number from 1, got ${batchSize}`);
  const referralsPerSecond = restoreRate / (mutationCost * mutationsPerReferral);
  const referralSeconds = (shopifyRoundTripMs + notifyRoundTripsMs + ledgerRoundTripMs * ledgerCallsPerReferral) / 1000;
  const recordsInFlight = referralsPerSecond * referralSeconds * headroom;
  const containers = Math.ceil(recordsInFlight / batchSize);
  return {
    referralsPerSecond,
    referralSeconds,
    recordsInFlight,
    // Lambda's SQS maximumConcurrency range, 2 to 1,000 (source above).
    maximumConcurrency: Math.min(1_000, Math.max(2, containers)),
  };
}

/**
 * SHOPIFY_RESTORE_RATE as written: points/s, or one of the plan names above. Throws with the
 * setting named, so a deploy stops while osls reads serverless.yml, before it calls AWS.
 */
export function restoreRateSetting(text: string): number {
  const value = text.trim().toLowerCase();
  if (value in SHOPIFY_PLAN_RESTORE_RATES) return SHOPIFY_PLAN_RESTORE_RATES[value as keyof typeof SHOPIFY_PLAN_RESTORE_RATES];
  const rate = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(rate > 0)) {
    throw new Error(
      `SHOPIFY_RESTORE_RATE must be the shop's GraphQL restore rate in points/s or a plan (${Object.keys(SHOPIFY_PLAN_RESTORE_RATES).join(', ')}): got ${JSON.stringify(text)}`,
    );
  }
  return rate;
}
