import { restoreRateSetting, SHOPIFY_PLAN_RESTORE_RATES, sizeForShop } from '../../lib/infra/shop-sizing';

describe('sizeForShop: worker containers from the shop budget', () => {
  it.each([
    ['standard', 2],
    ['advanced', 2],
    ['plus', 7],
    ['commerce_components', 14],
  ] as const)('runs a %s shop on %i containers of 10 records at 300 ms Shopify / 150 ms Customer.io round trips', (plan, containers) => {
    // Act
    const sizing = sizeForShop({ restoreRate: SHOPIFY_PLAN_RESTORE_RATES[plan], batchSize: 10 });

    // Assess
    expect(sizing.maximumConcurrency).toBe(containers);
  });

  it('keeps enough records in flight for the budget: rate x time per referral, with headroom', () => {
    // Act
    const plus = sizeForShop({ restoreRate: 1000, batchSize: 10 });

    // Assess: 1,000 / (2 x 10) = 50 referrals/s; 0.66 s each; x2
    expect(plus.referralsPerSecond).toBe(50);
    expect(plus.referralSeconds).toBeCloseTo(0.66);
    expect(plus.maximumConcurrency * 10).toBeGreaterThanOrEqual(plus.referralsPerSecond * plus.referralSeconds * 2);
  });

  it('needs more containers when the round trips are slower', () => {
    // Act
    const near = sizeForShop({ restoreRate: 1000, batchSize: 10, shopifyRoundTripMs: 100 });
    const far = sizeForShop({ restoreRate: 1000, batchSize: 10, shopifyRoundTripMs: 900 });

    // Assess
    expect(far.maximumConcurrency).toBeGreaterThan(near.maximumConcurrency);
  });

  it("stays within Lambda's SQS maximumConcurrency range, 2 to 1,000", () => {
    // Act
    const tiny = sizeForShop({ restoreRate: 1, batchSize: 10 });
    const huge = sizeForShop({ restoreRate: 10_000_000, batchSize: 1 });

    // Assess
    expect([tiny.maximumConcurrency, huge.maximumConcurrency]).toEqual([2, 1000]);
  });
});

describe('restoreRateSetting: SHOPIFY_RESTORE_RATE as written', () => {
  it('reads a plan name, in any case, as its restore rate', () => {
    // Act
    const rates = ['Standard', 'plus', ' commerce_components '].map(restoreRateSetting);

    // Assess
    expect(rates).toEqual([100, 1000, 2000]);
  });

  it('reads points per second', () => {
    // Act
    const rate = restoreRateSetting('250');

    // Assess
    expect(rate).toBe(250);
  });

  it.each(['', '0', 'fast', '-100'])('refuses %j, naming the setting', (text) => {
    // Act
    const attempt = () => restoreRateSetting(text);

    // Assess
    expect(attempt).toThrow(/SHOPIFY_RESTORE_RATE/);
  });
});
