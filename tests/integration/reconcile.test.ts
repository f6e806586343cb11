import { makeIngestHandler } from '../../functions/ingest';
import { PermanentError } from '../../lib/domain/errors';
import { httpApiEvent } from '../../local/apigw';
import { Pipeline, referralBody, signedProperties, WEBHOOK_SECRET } from '../support/pipeline';

/**
 * The reconciler end to end on the emulators: referrals PostHog has but whose webhook was lost
 * (ingest answered 503 to PostHog's 3 attempts, then PostHog dropped the event) are found through
 * the Query API and paid by the real worker, exactly once.
 */
describe('reconciler: PostHog Query API → ledger → queue → worker', () => {
  let pipeline: Pipeline;
  const MINUTE = 60_000;

  afterEach(async () => {
    await pipeline?.stop();
  });

  /** PostHog delivering to an ingest whose secret is not filled yet: 503 to every attempt. */
  async function deliverToDownIngest(body: unknown): Promise<number[]> {
    const down = makeIngestHandler({
      sqs: pipeline.sqs,
      config: async () => {
        throw new PermanentError('config_invalid', 'configuration: WEBHOOK_SECRET is not set');
      },
    });
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const event = httpApiEvent({ headers: { authorization: `Bearer ${WEBHOOK_SECRET}` }, body: JSON.stringify(body) });
      const response = await down(event);
      statuses.push((response as { statusCode: number }).statusCode);
    }
    return statuses;
  }

  /** A referral the app captured `minutesAgo` minutes ago and whose webhook never arrived. */
  async function lostReferral(minutesAgo: number) {
    const referral = referralBody();
    const event = referral.body.event as { uuid: string; distinct_id: string; properties: Record<string, unknown> };
    expect(await deliverToDownIngest(referral.body)).toEqual([503, 503, 503]);
    pipeline.posthog.record({
      uuid: event.uuid,
      event: 'referral redeemed',
      distinctId: event.distinct_id,
      // Signed by the app's backend before it captured the event, as every genuine referral is.
      properties: signedProperties(referral.body),
      timestamp: new Date(Date.now() - minutesAgo * MINUTE).toISOString(),
      personEmail: referral.redeemer,
    });
    return referral;
  }

  function paidCount(eventId: string): { cards: number; emails: number } {
    return {
      cards: pipeline.cardsFor(eventId).length,
      emails: pipeline.customerio.events.filter((event) => JSON.stringify(event.data).includes(pipeline.cardsFor(eventId)[0]?.code ?? '∅'))
        .length,
    };
  }

  it('pays every referral lost at the webhook exactly once, paging through more rows than one page', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const lost = [];
    for (let i = 0; i < 7; i++) lost.push(await lostReferral(30 + i));
    const reconcileFrom = new Date(Date.now() - 2 * 60 * MINUTE).toISOString();

    // Act
    const result = await pipeline.reconcile({ RECONCILE_FROM: reconcileFrom }, { pageSize: 3 });
    await pipeline.drain();

    // Assess
    expect(result).toMatchObject({ status: 'done', seen: 7, known: 0, queued: 7, unreconcilable: [] });
    expect(pipeline.posthog.queries.length).toBe(3); // 3 + 3 + 1 rows
    for (const { uuid } of lost) {
      expect((await pipeline.record(uuid))?.status).toBe('COMPLETED');
      expect(paidCount(uuid)).toEqual({ cards: 2, emails: 1 });
    }
    expect(pipeline.shopify.cards).toHaveLength(14);
    expect(pipeline.customerio.events).toHaveLength(7);
  });

  it('pays nothing twice when the webhook delivers some of them late and the reconciler runs again', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const lost = [await lostReferral(20), await lostReferral(21), await lostReferral(22)];
    const env = { RECONCILE_FROM: new Date(Date.now() - 60 * MINUTE).toISOString() };
    await pipeline.reconcile(env);

    // Act: two webhooks arrive late (one before the worker ran, one after), then the next run.
    const lateBeforeWorker = await pipeline.post(lost[0]!.body);
    await pipeline.drain();
    const lateAfterWorker = await pipeline.post(lost[1]!.body);
    await pipeline.drain();
    const second = await pipeline.reconcile(env);
    await pipeline.drain();

    // Assess
    expect([lateBeforeWorker.statusCode, lateAfterWorker.statusCode]).toEqual([202, 202]);
    expect(second).toMatchObject({ status: 'done', seen: 3, known: 3, queued: 0, missing: [] });
    for (const { uuid } of lost) expect(paidCount(uuid)).toEqual({ cards: 2, emails: 1 });
    expect(pipeline.shopify.cards).toHaveLength(6);
    expect(pipeline.customerio.events).toHaveLength(3);
  });

  it('never pays a referral from before RECONCILE_FROM, nor one younger than RECONCILE_MIN_AGE', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const beforeGoLive = await lostReferral(90);
    const inWindow = await lostReferral(30);
    const tooYoung = await lostReferral(1);
    const env = { RECONCILE_FROM: new Date(Date.now() - 60 * MINUTE).toISOString(), RECONCILE_MIN_AGE: '5m' };

    // Act
    const result = await pipeline.reconcile(env);
    await pipeline.drain();

    // Assess
    expect(result).toMatchObject({ status: 'done', seen: 1, queued: 1 });
    expect(pipeline.cardsFor(inWindow.uuid)).toHaveLength(2);
    expect(pipeline.cardsFor(beforeGoLive.uuid)).toHaveLength(0);
    expect(pipeline.cardsFor(tooYoung.uuid)).toHaveLength(0);
    expect(await pipeline.record(beforeGoLive.uuid)).toBeUndefined();
  });

  it('counts a referral event the webhook parser refuses as unreconcilable and queues nothing for it', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    pipeline.posthog.record({
      uuid: '0190b6c2-6f1e-7c3a-9d7e-2f0c1b9a8e41',
      event: 'referral redeemed',
      distinctId: 'anonymous-123',
      properties: { referrer_email: 'referrer@example.com' },
      timestamp: new Date(Date.now() - 30 * MINUTE).toISOString(),
    });

    // Act
    const result = await pipeline.reconcile({ RECONCILE_FROM: new Date(Date.now() - 60 * MINUTE).toISOString() });
    await pipeline.drain();

    // Assess
    expect(result).toMatchObject({
      status: 'done',
      seen: 0,
      queued: 0,
      unreconcilable: [{ eventId: '0190b6c2-6f1e-7c3a-9d7e-2f0c1b9a8e41', code: 'missing_redeemer_email' }],
    });
    expect(pipeline.shopify.cards).toHaveLength(0);
  });
  it('under DRY_RUN reports what it would queue and queues nothing, so a rehearsed referral is parked once', async () => {
    // Prepare: a DRY_RUN stage; the webhook delivered the referral, PostHog has it too
    pipeline = await Pipeline.start({ env: { DRY_RUN: 'true' } });
    const referral = referralBody();
    const event = referral.body.event as { uuid: string; distinct_id: string; properties: Record<string, unknown> };
    pipeline.posthog.record({
      uuid: event.uuid,
      event: 'referral redeemed',
      distinctId: event.distinct_id,
      properties: event.properties,
      timestamp: new Date(Date.now() - 30 * MINUTE).toISOString(),
      personEmail: referral.redeemer,
    });
    await pipeline.post(referral.body);
    await pipeline.drain();
    const env = { RECONCILE_FROM: new Date(Date.now() - 60 * MINUTE).toISOString() };

    // Act: three scheduled runs, the worker draining after each
    const runs = [];
    for (let run = 0; run < 3; run++) {
      runs.push(await pipeline.reconcile(env));
      await pipeline.drain();
    }

    // Assess
    for (const result of runs)
      expect(result).toMatchObject({ status: 'done', dryRun: true, seen: 1, queued: 0, missing: [{ eventId: referral.uuid }] });
    const parked = await pipeline.deadLetters();
    expect(parked.map((message) => message.MessageAttributes?.failureReason?.StringValue)).toEqual(['dry_run']);
    expect(pipeline.shopify.cards).toHaveLength(0);
  });
});
