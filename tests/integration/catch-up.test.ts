import { randomUUID } from 'node:crypto';
import { signPersonEvent } from '../../lib/domain/vouch';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * The reconciler's catch-up end to end on the emulators: a waiting referral's qualifying (or
 * refund) event that PostHog has and the webhook never delivered is found through the Query API,
 * read by ingest's parser, queued, and handled by the real worker, exactly once.
 */
describe('catch-up: PostHog Query API → qualifying and refund events → queue → worker', () => {
  let pipeline: Pipeline;
  const MINUTE = 60_000;
  const QUALIFY = { QUALIFY_EVENT: 'subscription paid', QUALIFY_WHERE: 'toFloat(properties.amount) >= 20' };
  const RECONCILE = () => ({ RECONCILE_FROM: new Date(Date.now() - 60 * MINUTE).toISOString(), RECONCILE_MIN_AGE: '0s' });

  afterEach(async () => {
    await pipeline?.stop();
  });

  /** A referral delivered by the webhook (and so in PostHog too), now waiting for its redeemer's qualifying event. */
  async function waitingReferral() {
    const referral = referralBody();
    const event = referral.body.event as { distinct_id: string; timestamp: string; properties: Record<string, unknown> };
    const person = referral.body.person as { id: string };
    const answer = await pipeline.post(referral.body);
    expect(answer.statusCode).toBe(202);
    await pipeline.drain();
    pipeline.posthog.record({
      uuid: referral.uuid,
      event: 'referral redeemed',
      distinctId: event.distinct_id,
      properties: event.properties,
      timestamp: event.timestamp,
      personEmail: referral.redeemer,
      personId: person.id,
    });
    return { ...referral, distinctId: event.distinct_id, personId: person.id, at: Date.parse(event.timestamp) };
  }

  /** The redeemer's event as the app's backend captures it, just after the referral: signed, into PostHog only (no webhook). */
  function captured(who: { distinctId: string; personId: string; at?: number }, name: string, properties: Record<string, unknown> = {}) {
    const uuid = randomUUID();
    const signature = signPersonEvent(pipeline.signingKey, { eventName: name, distinctId: who.distinctId, eventId: uuid });
    return pipeline.posthog.record({
      uuid,
      event: name,
      distinctId: who.distinctId,
      personId: who.personId,
      properties: { ...properties, referral_signature: signature },
      timestamp: new Date((who.at ?? Date.now() - 1_000) + 1).toISOString(),
    });
  }

  it('pays a waiting referral once its qualifying event, lost at the webhook, is caught up; a second run queues nothing', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: QUALIFY });
    const referral = await waitingReferral();
    expect((await pipeline.record(referral.uuid))?.status).toBe('AWAITING');
    captured(referral, 'subscription paid', { amount: 49 });
    const env = { ...QUALIFY, ...RECONCILE() };

    // Act
    const first = await pipeline.reconcile(env);
    await pipeline.drain();
    const second = await pipeline.reconcile(env);
    await pipeline.drain();

    // Assess
    expect(first).toMatchObject({ status: 'done', personEvents: { seen: 1, known: 0, missing: 1, queued: 1, unreconcilable: 0 } });
    expect(second).toMatchObject({ status: 'done', personEvents: { seen: 1, known: 1, missing: 0, queued: 0 } });
    expect((await pipeline.record(referral.uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(referral.uuid)).toHaveLength(2);
    expect(pipeline.customerio.events.filter((event) => event.name === 'pyramid_scheme_fulfillment')).toHaveLength(1);
  });

  it("asks only for redeemers' events that pass QUALIFY_WHERE: a payment too small, or another person's, is never fetched", async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: QUALIFY });
    const referral = await waitingReferral();
    captured(referral, 'subscription paid', { amount: 5 });
    captured({ distinctId: 'someone-else', personId: randomUUID() }, 'subscription paid', { amount: 49 });

    // Act
    const result = await pipeline.reconcile({ ...QUALIFY, ...RECONCILE() });
    await pipeline.drain();

    // Assess
    expect(result).toMatchObject({ status: 'done', personEvents: { seen: 0, queued: 0 } });
    expect((await pipeline.record(referral.uuid))?.status).toBe('AWAITING');
    expect(pipeline.cardsFor(referral.uuid)).toHaveLength(0);
  });

  it('leaves a qualifying event the webhook delivered to the worker alone: the ledger has it', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: QUALIFY });
    const referral = await waitingReferral();
    const event = captured(referral, 'subscription paid', { amount: 49 });
    const delivered = await pipeline.post({
      event: {
        uuid: event.uuid,
        event: event.event,
        distinct_id: event.distinctId,
        properties: event.properties,
        timestamp: event.timestamp,
      },
      person: { id: referral.personId, properties: { email: referral.redeemer } },
    });
    await pipeline.drain();

    // Act
    const result = await pipeline.reconcile({ ...QUALIFY, ...RECONCILE() });
    await pipeline.drain();

    // Assess
    expect(delivered.statusCode).toBe(202);
    expect(result).toMatchObject({ status: 'done', personEvents: { seen: 1, known: 1, queued: 0 } });
    expect(pipeline.cardsFor(referral.uuid)).toHaveLength(2);
  });

  it('cancels a waiting referral by a refund event lost at the webhook, caught up; nothing is paid', async () => {
    // Prepare
    const settings = { ...QUALIFY, REVOKE_EVENT: 'subscription refunded' };
    pipeline = await Pipeline.start({ env: settings });
    const referral = await waitingReferral();
    captured(referral, 'subscription refunded');

    // Act
    const result = await pipeline.reconcile({ ...settings, ...RECONCILE() });
    await pipeline.drain();

    // Assess
    expect(result).toMatchObject({ status: 'done', personEvents: { seen: 1, queued: 1 } });
    expect((await pipeline.record(referral.uuid))?.status).toBe('REVOKED');
    expect(pipeline.cardsFor(referral.uuid)).toHaveLength(0);
  });

  it('under DRY_RUN counts the events it would queue and queues none', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: QUALIFY });
    const referral = await waitingReferral();
    captured(referral, 'subscription paid', { amount: 49 });

    // Act
    const result = await pipeline.reconcile({ ...QUALIFY, ...RECONCILE(), DRY_RUN: 'true' });
    await pipeline.drain();

    // Assess
    expect(result).toMatchObject({ status: 'done', dryRun: true, personEvents: { seen: 1, missing: 1, queued: 0 } });
    expect((await pipeline.record(referral.uuid))?.status).toBe('AWAITING');
  });
});
