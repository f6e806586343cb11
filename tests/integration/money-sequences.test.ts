import { RetryableError } from '../../lib/domain/errors';
import type { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { expiryDate, parseGiftCardNote } from '../../lib/domain/rewards';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * The sequences of issue #10 that lost, misdirected or doubled money on 3d5afe2, each through the
 * real pipeline (ingest, SQS, the worker, the DynamoDB ledger, the fake Shopify and Customer.io).
 */
describe('money sequences (#10)', () => {
  let pipeline: Pipeline;
  const DAY = 86_400_000;

  afterEach(async () => {
    await pipeline?.stop();
  });

  it("#10.1: a referral refused for its referrer's cap never steals the redeemer from another referrer's eligible one", async () => {
    // Prepare: the capped referrer's one slot is used; A (capped) claims the new redeemer, then its cap check fails transiently
    let failSlotFor: string | undefined;
    pipeline = await Pipeline.start({
      env: { MAX_REWARDS_PER_REFERRER: '1' },
      visibilityTimeoutSeconds: 2,
      wrapLedger: (ledger) =>
        Object.assign(Object.create(ledger) as Ledger, {
          count: (...args: Parameters<Ledger['count']>) => {
            const [counter, eventId] = args;
            if (counter.kind !== 'referrer' || eventId !== failSlotFor) return ledger.count(...args);
            failSlotFor = undefined;
            throw new RetryableError('simulated: DynamoDB throttled the cap check');
          },
        }),
    });
    await pipeline.post(referralBody({ referrer: 'capped@example.com' }).body);
    await pipeline.drain();
    const capped = referralBody({ referrer: 'capped@example.com', redeemer: 'newcomer@example.com' });
    const eligible = referralBody({ referrer: 'eligible@example.com', redeemer: 'newcomer@example.com' });
    failSlotFor = capped.uuid;
    await pipeline.post(capped.body);
    await pipeline.poller.pollOnce(0);

    // Act: the eligible referral arrives while the capped one holds the redeemer, undecided
    await pipeline.post(eligible.body);
    await pipeline.poller.pollOnce(0);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(capped.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'referrer_cap_reached' });
    expect((await pipeline.record(eligible.uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(eligible.uuid)).toHaveLength(2);
    expect(pipeline.cardsFor(capped.uuid)).toHaveLength(0);
  });

  it("#10.1: the ledger gives a refused referral's referrer slot back, and hands a refused holder's redeemer claim over (DynamoDB)", async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { ledger } = pipeline;
    await ledger.count({ kind: 'referrer', person: 'popular@example.com' }, 'refused', { limit: 1 });
    await ledger.count({ kind: 'redeemer', person: 'newcomer@example.com' }, 'refused');

    // Act
    await ledger.uncount({ kind: 'referrer', person: 'popular@example.com' }, 'refused');
    const slot = await ledger.count({ kind: 'referrer', person: 'popular@example.com' }, 'eligible', { limit: 1 });
    const redeemer = await ledger.count({ kind: 'redeemer', person: 'newcomer@example.com' }, 'eligible', { takeOver: 'refused' });

    // Assess
    expect(slot).toBe(true);
    expect(await ledger.holders({ kind: 'referrer', person: 'popular@example.com' })).toEqual(['eligible']);
    expect(redeemer).toBe(true);
    expect((await ledger.holders({ kind: 'redeemer', person: 'newcomer@example.com' }))[0]).toBe('eligible');
  });

  it('#10.4: a reward that does not exist yet is issued with the full validity left when the retry comes days later', async () => {
    // Prepare: the first attempt dies right after begin; the retry comes 20 days later
    let clock = Date.now();
    let crashed = false;
    pipeline = await Pipeline.start({
      env: { REWARD_EXPIRES_DAYS: '30' },
      now: () => clock,
      checkpoint: (step) => {
        if (step !== 'begun' || crashed) return;
        crashed = true;
        clock += 20 * DAY;
        throw new Error('simulated crash');
      },
    });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const expected = expiryDate(clock, 30);
    expect(pipeline.cardsFor(uuid).map((card) => card.expiresOn)).toEqual([expected, expected]);
    expect(await pipeline.record(uuid)).toMatchObject({ referrerExpiresOn: expected, redeemerExpiresOn: expected });
  });

  it('#10.4: a lost-response reward found by look-up is recorded with the expiry it was really created with', async () => {
    // Prepare: the first card is created but its answer lost; from then on the clock reads two days later
    const start = Date.now();
    pipeline = await Pipeline.start({
      env: { REWARD_EXPIRES_DAYS: '30' },
      now: () => (pipeline.shopify.cards.length > 0 ? start + 2 * DAY : start),
    });
    pipeline.shopify.injectFaults('lost-response');
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess: one card per role, and the ledger says what each card has
    const cards = pipeline.cardsFor(uuid);
    expect(cards).toHaveLength(2);
    const record = await pipeline.record(uuid);
    for (const card of cards) {
      const role = parseGiftCardNote(card.note)?.role;
      expect(record?.[`${role!}ExpiresOn`]).toBe(card.expiresOn);
    }
    expect(cards.map((card) => card.expiresOn)).toContain(expiryDate(start, 30));
  });

  it('#10.5: a second message with the same uuid and other people is paid and mailed as the ledger holds it', async () => {
    // Prepare: the first attempt is decided and stops on a permanent Shopify failure (one card made)
    pipeline = await Pipeline.start();
    const first = referralBody();
    pipeline.shopify.injectFaults('unauthorized');
    await pipeline.post(first.body);
    await pipeline.drain();
    expect((await pipeline.record(first.uuid))?.status).toBe('FAILED');
    const second = referralBody({ uuid: first.uuid, referrer: 'mallory@example.com', redeemer: 'mallory.two@example.com' });

    // Act
    await pipeline.post(second.body);
    await pipeline.drain();

    // Assess
    const record = await pipeline.record(first.uuid);
    expect(record).toMatchObject({ status: 'COMPLETED', redeemerEmail: first.redeemer, customerEmail: first.redeemer });
    expect(pipeline.customerio.events).toHaveLength(1);
    expect(pipeline.customerio.events[0].identifier).toBe(first.redeemer);
    expect(pipeline.customerio.events[0].data).toMatchObject({ refereeemail: first.redeemer, referreremail: record?.referrerEmail });
    expect(JSON.stringify(pipeline.posthog.captures)).not.toContain('mallory');
    expect(pipeline.cardsFor(first.uuid)).toHaveLength(2);
  });

  it('#10.6: changing REWARD_TYPE mid-flight still pays each role once, the way the referral began', async () => {
    // Prepare: begun as gift_card, one card created but its answer lost, then a permanent failure
    pipeline = await Pipeline.start();
    pipeline.shopify.injectFaults('lost-response', 'unauthorized', 'unauthorized');
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();
    expect((await pipeline.record(uuid))?.status).toBe('FAILED');
    expect(pipeline.cardsFor(uuid)).toHaveLength(1);

    // Act: the operator switches to discount codes and redrives
    pipeline.env.REWARD_TYPE = 'discount_code';
    await pipeline.redrive();
    await pipeline.drain();

    // Assess
    expect(pipeline.shopify.discounts).toHaveLength(0);
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'COMPLETED', rewardType: 'gift_card' });
  });
});
