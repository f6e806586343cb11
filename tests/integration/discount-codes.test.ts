import { discountCodeIssuer } from '../../lib/adapters/shopify/discount-codes';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { Pipeline, referralBody } from '../support/pipeline';
import { StaticToken } from '../../lib/adapters/shopify/auth';

/** REWARD_TYPE=discount_code: the same exactly-once guarantees, with single-use discount codes. */
describe('discount-code rewards', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const discountsFor = (eventId: string) => pipeline.shopify.discounts.filter((d) => d.title.includes(eventId));

  it('issues two single-use $25 discount codes, no gift cards, and mails those codes', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REWARD_TYPE: 'discount_code', REWARD_EXPIRES_DAYS: '60' } });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const record = await pipeline.record(uuid);
    expect(record?.status).toBe('COMPLETED');
    const discounts = discountsFor(uuid);
    expect(discounts).toHaveLength(2);
    const expiresOn = new Date(Date.now() + 60 * 86_400_000).toISOString().slice(0, 10);
    expect(record).toMatchObject({ referrerExpiresOn: expiresOn, redeemerExpiresOn: expiresOn });
    for (const discount of discounts) {
      expect(discount).toMatchObject({ amount: '25.00', usageLimit: 1, appliesOncePerCustomer: true, endsAt: `${expiresOn}T23:59:59Z` });
    }
    expect(discounts.map((d) => d.code).sort()).toEqual([record?.referrerCode, record?.redeemerCode].sort());
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.events[0].data).toMatchObject({
      discountreferrer: record?.referrerCode,
      discountreferee: record?.redeemerCode,
    });
    expect(pipeline.posthog.captures[0].properties.reward_type).toBe('discount_code');
  });

  it('recognises its own discount code when Shopify created it but the answer was lost, even when delivered twice', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REWARD_TYPE: 'discount_code' } });
    pipeline.shopify.injectFaults('lost-response');
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect((await pipeline.record(uuid))?.status).toBe('COMPLETED');
    expect(pipeline.shopify.discounts).toHaveLength(2);
    expect(pipeline.customerio.events).toHaveLength(1);
  });

  it("replaces a code that is already someone else's discount", async () => {
    // Prepare: the first code is a discount the shop made by hand
    const codes = ['SUMMERSALE26', 'FRESHREFERRER', 'FRESHREDEEMER'];
    pipeline = await Pipeline.start({ env: { REWARD_TYPE: 'discount_code' }, newCode: () => codes.shift() ?? 'SPAREC0DE99' });
    const shop = discountCodeIssuer(
      new ShopifyTransport({ baseUrl: pipeline.shopify.url, auth: new StaticToken('shpat_sandbox'), apiVersion: '2026-07', pacer: false }),
    );
    await shop.createGiftCard({ code: 'summersale26', amount: '5.00', note: 'Summer sale' });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const record = await pipeline.record(uuid);
    expect(record).toMatchObject({ status: 'COMPLETED', codeCollisions: 1 });
    expect(
      discountsFor(uuid)
        .map((d) => d.code)
        .sort(),
    ).toEqual(['FRESHREDEEMER', 'FRESHREFERRER']);
  });
});
