import { queueSender } from '../../lib/adapters/sqs/queue';
import { loadShopifyConfig } from '../../lib/infra/config';
import { tokenProviderFor } from '../../lib/adapters/shopify/auth';
import type { LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { approveReferral, rejectReferral, type ReviewDeps } from '../../lib/domain/lifecycle/review';
import { revokeReferral } from '../../lib/domain/lifecycle/revoke';
import { deactivateReward } from '../../lib/adapters/shopify/deactivation';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { lifecycleIndex, lifecycleLedger } from '../support/lifecycle';
import { Pipeline, referralBody } from '../support/pipeline';

/** Review guards, the operator's decisions and revoke, through the real pipeline. */
describe('review queue, spend guards and revoke', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const recordOf = async (uuid: string) => (await pipeline.record(uuid)) as LifecycleRecord | undefined;
  const reviewDeps = (): ReviewDeps => ({
    ledger: lifecycleLedger(pipeline),
    enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl),
    posthog: undefined,
  });
  const revokeDeps = () => {
    const transport = new ShopifyTransport({
      baseUrl: pipeline.shopify.url,
      auth: tokenProviderFor(pipeline.shopify.url, loadShopifyConfig(pipeline.shopify.env).auth),
      apiVersion: '2026-07',
      pacer: false,
    });
    return {
      ledger: lifecycleLedger(pipeline),
      shopify: { deactivateReward: (id: string) => deactivateReward(transport, id) },
      rewardAmount: '25.00',
    };
  };

  it('pays exactly the daily budget under concurrent referrals and sends the rest to review', async () => {
    // Prepare: a 200.00 budget is four referrals of 2 × 25.00; ten arrive at once
    pipeline = await Pipeline.start({ env: { PROGRAM_DAILY_BUDGET: '200' } });
    const referrals = Array.from({ length: 10 }, () => referralBody());
    await Promise.all(referrals.map(({ body }) => pipeline.post(body)));

    // Act
    await Promise.all([pipeline.drain(), pipeline.drain(), pipeline.drain()]);

    // Assess
    const records = await Promise.all(referrals.map(({ uuid }) => recordOf(uuid)));
    expect(records.filter((r) => r?.status === 'COMPLETED')).toHaveLength(4);
    const inReview = records.filter((r) => r?.status === 'REVIEW');
    expect(inReview).toHaveLength(6);
    expect(inReview.every((r) => r?.reviewReasons?.join() === 'budget')).toBe(true);
    expect(pipeline.shopify.cards).toHaveLength(8);
    expect(await lifecycleLedger(pipeline).spent(`day#${records[0]!.createdAt.slice(0, 10)}`)).toEqual({ cents: 20_000, referrals: 4 });
  });

  it('approves a referral in review once: paid exactly once, counted past the budget', async () => {
    // Prepare: a budget smaller than one referral sends it to review
    pipeline = await Pipeline.start({ env: { PROGRAM_DAILY_BUDGET: '10' } });
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();

    // Act: approved twice (a repeated command), drained in between and after
    const first = await approveReferral(reviewDeps(), uuid, 'known customer');
    await pipeline.drain();
    const second = await approveReferral(reviewDeps(), uuid);
    await pipeline.drain();

    // Assess
    expect([first.result, second.result]).toEqual(['approved', 'already-approved']);
    expect(await recordOf(uuid)).toMatchObject({ status: 'COMPLETED', reviewDecision: 'approved', reviewNote: 'known customer' });
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
    expect(pipeline.customerio.events).toHaveLength(1);
    const day = `day#${(await recordOf(uuid))!.createdAt.slice(0, 10)}`;
    expect(await lifecycleLedger(pipeline).spent(day)).toEqual({ cents: 5_000, referrals: 1 });
  });

  it('rejects a referral in review once, issuing nothing and refusing a later approval', async () => {
    // Prepare: the third referral by one referrer within a day goes to review
    pipeline = await Pipeline.start({ env: { REVIEW_REFERRER_VELOCITY: '2/24h' } });
    const referrals = Array.from({ length: 3 }, () => referralBody({ referrer: 'busy@example.com' }));
    for (const { body } of referrals) {
      await pipeline.post(body);
      await pipeline.drain();
    }
    const third = referrals[2]!.uuid;

    // Act
    const first = await rejectReferral(reviewDeps(), third, 'farmed invites');
    const again = await rejectReferral(reviewDeps(), third, 'farmed invites');
    const approval = approveReferral(reviewDeps(), third);

    // Assess
    await expect(approval).rejects.toThrow(/not in review/);
    expect([first.result, again.result]).toEqual(['rejected', 'already-rejected']);
    expect(await recordOf(third)).toMatchObject({ status: 'REJECTED', rejectionReason: 'reviewer_rejected', reviewReasons: ['velocity'] });
    expect(pipeline.cardsFor(third)).toHaveLength(0);
    expect(pipeline.shopify.cards).toHaveLength(4);
  });

  it('revoking a held referral cancels it before anything is issued, and its release then pays nothing', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REWARD_HOLD: '1h' } });
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();

    // Act
    const outcome = await revokeReferral(revokeDeps(), uuid, 'order returned');
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(outcome).toMatchObject({ result: 'cancelled', beforePayout: true });
    expect(await recordOf(uuid)).toMatchObject({ status: 'REVOKED', revokeReason: 'order returned' });
    expect(await lifecycleIndex(pipeline).waiting('held')).toEqual([]);
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.events).toHaveLength(0);
  });

  it('revokes a paid referral, finishing on the next run after failing between the two deactivations', async () => {
    // Prepare: paid, then the second deactivation fails
    pipeline = await Pipeline.start();
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();
    pipeline.shopify.injectFaults(undefined as never, 'unauthorized');

    // Act
    const failed = revokeReferral(revokeDeps(), uuid, 'fraud');
    await expect(failed).rejects.toThrow();
    const halfway = await recordOf(uuid);
    const outcome = await revokeReferral(revokeDeps(), uuid, 'fraud');
    const repeat = await revokeReferral(revokeDeps(), uuid, 'fraud');

    // Assess
    expect(halfway?.status).toBe('COMPLETED');
    expect(Boolean(halfway?.referrerDeactivatedAt) !== Boolean(halfway?.redeemerDeactivatedAt)).toBe(true);
    expect([outcome.result, repeat.result]).toEqual(['revoked', 'already-revoked']);
    expect(outcome.balanceLeft).toEqual({ referrer: '25.00', redeemer: '25.00' });
    expect(await recordOf(uuid)).toMatchObject({ status: 'REVOKED', revokeReason: 'fraud' });
    expect(pipeline.cardsFor(uuid).map((card) => card.enabled)).toEqual([false, false]);
    expect(pipeline.shopify.requests.filter((r) => r.operation === 'giftCardDeactivate' && r.status === 200)).toHaveLength(2);
  });
});
