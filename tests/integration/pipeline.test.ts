import { giftCardIssuer } from '../../lib/adapters/shopify/gift-cards';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { giftCardNote, type Checkpoint } from '../../lib/domain/rewards';
import { Pipeline, referralBody } from '../support/pipeline';
import { StaticToken } from '../../lib/adapters/shopify/auth';

/**
 * The exactly-once guarantees, end to end on the emulators: for each PostHog event uuid,
 * exactly two gift cards and one Customer.io event, whatever happens on the way.
 */
describe('pipeline: webhook → queue → worker → Shopify + Customer.io', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  async function expectFulfilledOnce(eventId: string) {
    const record = await pipeline.record(eventId);
    expect(record?.status).toBe('COMPLETED');
    const cards = pipeline.cardsFor(eventId);
    expect(cards.map((card) => card.note).sort()).toEqual([giftCardNote(eventId, 'redeemer'), giftCardNote(eventId, 'referrer')]);
    const events = pipeline.customerio.events.filter((event) => event.id === record?.customerioEventId);
    expect(events).toHaveLength(1);
    // The codes mailed are the codes on the cards, which are the codes in the ledger.
    const byRole = Object.fromEntries(cards.map((card) => [card.note?.split(' ')[1], card.code]));
    expect(events[0].data).toMatchObject({ discountreferrer: record?.referrerCode, discountreferee: record?.redeemerCode });
    expect(byRole).toEqual({ referrer: record?.referrerCode, redeemer: record?.redeemerCode });
    return { record: record!, cards, event: events[0] };
  }

  it('turns one referral into two $25 gift cards and one Customer.io event', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { uuid, redeemer, body } = referralBody({ referrer: 'Referrer.Person@Example.com' });

    // Act
    const response = await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(response).toEqual({ statusCode: 202, body: { status: 'queued', eventId: uuid } });
    const { cards, event } = await expectFulfilledOnce(uuid);
    expect(cards.map((card) => Number(card.initialValue))).toEqual([25, 25]);
    expect(event.name).toBe('pyramid_scheme_fulfillment');
    expect(event.identifier).toBe(redeemer);
    expect(event.data).toMatchObject({ referreremail: 'referrer.person@example.com', refereeemail: redeemer });
  });

  it('still issues two cards and one event when PostHog delivers the same event three times', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { uuid, body } = referralBody();

    // Act: two copies land in the same batch (processed concurrently), the third after completion
    await pipeline.post(body);
    await pipeline.post(body);
    await pipeline.drain();
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    await expectFulfilledOnce(uuid);
    expect(pipeline.shopify.cards).toHaveLength(2);
    expect(pipeline.customerio.events).toHaveLength(1);
  });

  it('keeps two workers polling the same duplicates from paying twice', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const referrals = Array.from({ length: 5 }, () => referralBody());
    for (const { body } of referrals) for (let copy = 0; copy < 3; copy++) await pipeline.post(body);

    // Act: two pollers, as two concurrent Lambda instances
    await Promise.all([pipeline.drain(), pipeline.drain()]);

    // Assess
    for (const { uuid } of referrals) await expectFulfilledOnce(uuid);
    expect(pipeline.shopify.cards).toHaveLength(10);
    expect(pipeline.customerio.events).toHaveLength(5);
  });

  it('recognises its own card when Shopify created it but the answer was lost', async () => {
    // Prepare: the first create is applied by Shopify, then the connection drops
    pipeline = await Pipeline.start();
    pipeline.shopify.injectFaults('lost-response');
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess: the retry got TAKEN, looked the card up, found our note, and did not mint a new code
    const { record } = await expectFulfilledOnce(uuid);
    expect(pipeline.shopify.cards).toHaveLength(2);
    expect(record.codeCollisions ?? 0).toBe(0);
  });

  it('resumes after Shopify fails following the first card, without a third card', async () => {
    // Prepare: the first create succeeds, then Shopify fails long enough to outlast one invocation
    let creates = 0;
    pipeline = await Pipeline.start({ workerTimeoutMs: 4_500 });
    pipeline.shopify.setFaultPolicy((operation) => {
      if (operation !== 'giftCardCreate') return undefined;
      creates += 1;
      return creates >= 2 && creates <= 4 ? 'http503' : undefined;
    });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const { record } = await expectFulfilledOnce(uuid);
    expect(pipeline.shopify.cards).toHaveLength(2);
    expect(record.attempts).toBeGreaterThanOrEqual(2);
  });

  it('sends one Customer.io event with unchanged codes after Customer.io was down', async () => {
    // Prepare
    pipeline = await Pipeline.start({ workerTimeoutMs: 4_500 });
    pipeline.customerio.injectFaults('http503', 'http500', 'lost-response', 'http429', 'http503');
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess: the lost response delivered the event once; the resends carried the same id and were dropped
    const { record } = await expectFulfilledOnce(uuid);
    expect(pipeline.customerio.events).toHaveLength(1);
    expect(pipeline.customerio.events[0].data.discountreferrer).toBe(record.referrerCode);
    expect(pipeline.shopify.cards).toHaveLength(2);
  });

  it('dead-letters a permanent Shopify failure at once, with the reason, and issues nothing more', async () => {
    // Prepare: a revoked token
    pipeline = await Pipeline.start();
    pipeline.shopify.setFaultPolicy(() => 'unauthorized');
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const dead = await pipeline.deadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0].MessageAttributes?.failureReason?.StringValue).toBe('shopify_auth');
    expect(dead[0].MessageAttributes?.eventId?.StringValue).toBe(uuid);
    const record = await pipeline.record(uuid);
    expect(record).toMatchObject({ status: 'FAILED', failureReason: 'shopify_auth', attempts: 1 });
    expect(pipeline.customerio.events).toHaveLength(0);
  });

  it('completes a redriven referral from the DLQ without duplicating what was already done', async () => {
    // Prepare: the cards are created, then Customer.io rejects our credentials
    pipeline = await Pipeline.start();
    pipeline.customerio.setFaultPolicy(() => 'unauthorized');
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();
    const before = await pipeline.record(uuid);
    expect(before?.status).toBe('FAILED');
    expect(pipeline.shopify.cards).toHaveLength(2);

    // Act: the operator fixes the key and redrives, twice by mistake
    pipeline.customerio.setFaultPolicy(undefined);
    expect(await pipeline.redrive()).toBe(1);
    await pipeline.drain();
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const { record } = await expectFulfilledOnce(uuid);
    expect(pipeline.shopify.cards).toHaveLength(2);
    expect(record.referrerCode).toBe(before?.referrerCode);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });

  it('lets SQS dead-letter a referral whose retries run out, and records why in the ledger', async () => {
    // Prepare: Shopify never recovers
    pipeline = await Pipeline.start({ workerTimeoutMs: 3_200 });
    pipeline.shopify.setFaultPolicy(() => 'http503');
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain(30_000);

    // Assess
    const dead = await pipeline.deadLetters();
    expect(dead.map((message) => JSON.parse(message.Body!).eventId)).toEqual([uuid]);
    expect(await pipeline.record(uuid)).toMatchObject({
      status: 'FAILED',
      failureReason: 'retries_exhausted',
      attempts: pipeline.maxReceiveCount,
    });
    expect(pipeline.shopify.cards).toHaveLength(0);
  }, 40_000);

  it.each<Checkpoint>(['begun', 'card:referrer', 'card:redeemer', 'customerio', 'completed'])(
    'resumes without duplicates after a crash at %s',
    async (step) => {
      // Prepare: the worker dies right after this step, once
      let crashed = false;
      pipeline = await Pipeline.start({
        checkpoint: (reached) => {
          if (reached === step && !crashed) {
            crashed = true;
            throw new Error(`simulated crash after ${step}`);
          }
        },
      });
      const { uuid, body } = referralBody();

      // Act
      await pipeline.post(body);
      await pipeline.drain();

      // Assess
      expect(crashed).toBe(true);
      await expectFulfilledOnce(uuid);
      expect(pipeline.shopify.cards).toHaveLength(2);
      expect(pipeline.customerio.events).toHaveLength(1);
    },
  );

  it('waits out the lease of a worker that died mid-referral, then finishes it once', async () => {
    // Prepare: a crashed worker left the referral leased for another 1.5 s, with its codes chosen
    // (and the referral's people: the ones the message names, which the signature vouches for)
    pipeline = await Pipeline.start();
    const { uuid, redeemer, body } = referralBody();
    const posted = await pipeline.post(body);
    expect(posted.statusCode).toBe(202);
    const referrer = (body.event as { properties: { referrer_email: string } }).properties.referrer_email;
    const referral = {
      v: 1 as const,
      eventId: uuid,
      eventName: 'referral redeemed',
      referrerEmail: referrer,
      redeemerEmail: redeemer,
      customerEmail: redeemer,
    };
    const held = await pipeline.ledger.begin(referral, {
      owner: 'crashed-worker',
      leaseUntil: Date.now() + 1_500,
      codes: { referrer: 'CRASHREFERRER', redeemer: 'CRASHREDEEMER' },
      customerioEventId: '01ARZ3NDEKTSV4RRFFQ69G5FAV',
      rewardType: 'gift_card',
      rewardAmount: '25.00',
    });
    expect(held.outcome).toBe('acquired');

    // Act
    await pipeline.drain();

    // Assess: the successor reused the codes the dead worker had persisted
    const { record } = await expectFulfilledOnce(uuid);
    expect(record.referrerCode).toBe('CRASHREFERRER');
    expect(record.attempts).toBeGreaterThanOrEqual(2);
  });

  it("replaces a code that collides with someone else's card, persisting the new one first", async () => {
    // Prepare: a card with our first code already exists on the shop, not ours
    const codes = ['COLLIDE2345', 'FRESHREFERRER', 'FRESHREDEEMER'];
    pipeline = await Pipeline.start({ newCode: () => codes.shift() ?? 'SPAREC0DE99' });
    const shop = giftCardIssuer(
      new ShopifyTransport({ baseUrl: pipeline.shopify.url, auth: new StaticToken('shpat_sandbox'), apiVersion: '2026-07' }),
    );
    await shop.createGiftCard({ code: 'collide2345', amount: '10.00', note: 'a gift card sold at the till' });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const { record } = await expectFulfilledOnce(uuid);
    expect(record.referrerCode).not.toBe('COLLIDE2345');
    expect(record.codeCollisions).toBe(1);
    expect(pipeline.shopify.cards).toHaveLength(3);
  });

  it('refuses an unauthenticated webhook and queues nothing', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { body } = referralBody();

    // Act
    const response = await pipeline.post(body, { authorization: 'Bearer wrong' });

    // Assess
    expect(response.statusCode).toBe(401);
    expect(response.body.error.code).toBe('unauthorized');
    expect(await pipeline.depth(pipeline.resources.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });
});
