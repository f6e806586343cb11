import { randomUUID } from 'node:crypto';
import { enqueueReferral } from '../../lib/adapters/sqs/queue';
import type { Referral } from '../../lib/domain/referral';
import { signReferral } from '../../lib/domain/vouch';
import { Pipeline, referralBody } from '../support/pipeline';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';

/**
 * Issue #10, defects 2, 3 and 8, end to end on the emulators: a referral a later step would refuse
 * is refused before any card exists, the codes go to the person the rules judged, and the rules
 * see through +tags, googlemail.com and subdomains.
 */
describe('limits and identity, through the pipeline', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  /**
   * A queue message as an older release, a hand-written redrive or anything but ingest may have left
   * it, carrying the app's signature of its people (what is under test is how its other fields are read).
   */
  const queued = (fields: Partial<Referral> = {}): Referral => {
    const uuid = randomUUID();
    const referral: Referral = {
      v: 1,
      eventId: uuid,
      eventName: 'referral redeemed',
      referrerEmail: `referrer-${uuid.slice(0, 8)}@example.com`,
      redeemerEmail: `redeemer-${uuid.slice(0, 8)}@example.com`,
      customerEmail: `redeemer-${uuid.slice(0, 8)}@example.com`,
      ...fields,
    };
    return { ...referral, referralSignature: signReferral(TEST_REFERRAL_SIGNING_KEY, referral) };
  };
  const longEmail = `${'r'.repeat(151 - '@example.com'.length)}@example.com`;

  it('refuses at ingest (422) a redeemer Customer.io cannot identify, so no card is issued that could never be mailed', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { body } = referralBody({ redeemer: longEmail });

    // Act
    const response = await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(response.statusCode).toBe(422);
    expect(response.body.error.code).toBe('redeemer_email_too_long');
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.requests).toHaveLength(0);
  });

  it('dead-letters such a message that did not come through ingest before its first Shopify call, with the reason', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const referral = queued({ redeemerEmail: longEmail, customerEmail: longEmail });

    // Act
    await enqueueReferral(pipeline.sqs, pipeline.resources.queueUrl, referral);
    await pipeline.drain();

    // Assess
    expect(pipeline.shopify.requests).toHaveLength(0);
    expect(pipeline.customerio.requests).toHaveLength(0);
    expect(await pipeline.record(referral.eventId)).toMatchObject({ status: 'FAILED', failureReason: 'redeemer_email_too_long' });
    const dead = await pipeline.deadLetters();
    expect(dead.map((m) => m.MessageAttributes?.failureReason?.StringValue)).toEqual(['redeemer_email_too_long']);
  });

  it('refuses as a self-referral a referrer who is the PostHog person, however many redeemer emails they invent', async () => {
    // Prepare: the referrer's own session captures redemptions for made-up redeemers
    pipeline = await Pipeline.start();
    const referrer = `collector-${randomUUID().slice(0, 8)}@example.com`;
    const bodies = [1, 2, 3].map((n) => {
      const made = referralBody({ referrer, redeemer: `invented-${n}-${randomUUID().slice(0, 8)}@example.com` });
      (made.body.person as { properties: { email: string } }).properties.email = referrer.toUpperCase();
      return made;
    });

    // Act
    for (const { body } of bodies) await pipeline.post(body);
    await pipeline.drain();

    // Assess
    for (const { uuid } of bodies) {
      expect(await pipeline.record(uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'self_referral' });
    }
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.events).toHaveLength(0);
  });

  it('mails both codes to the redeemer, not to a different PostHog person', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { uuid, redeemer, body } = referralBody();
    (body.person as { properties: { email: string } }).properties.email = 'someone.else@example.net';

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.customerio.events.map((event) => event.identifier)).toEqual([redeemer]);
  });

  it('never routes the codes of a message queued before the fix to its customerEmail: the redeemer gets them', async () => {
    // Prepare: the previous release queued the PostHog person's email as customerEmail
    pipeline = await Pipeline.start();
    const referral = queued({ customerEmail: 'third.party@example.net' });

    // Act
    await enqueueReferral(pipeline.sqs, pipeline.resources.queueUrl, referral);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(referral.eventId)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.customerio.events.map((event) => event.identifier)).toEqual([referral.redeemerEmail]);
  });

  it('refuses a pre-fix message whose customerEmail is the referrer as a self-referral', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const base = queued();
    const referral = { ...base, customerEmail: base.referrerEmail };

    // Act
    await enqueueReferral(pipeline.sqs, pipeline.resources.queueUrl, referral);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(referral.eventId)).toMatchObject({ status: 'REJECTED', rejectionReason: 'self_referral' });
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it('refuses a self-referral by +tag on a domain other than Gmail', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { uuid, body } = referralBody({ referrer: 'me@outlook.com', redeemer: 'me+2@outlook.com' });

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'self_referral' });
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it.each([
    ['googlemail.com, when gmail.com is blocked', 'gmail.com', 'friend@googlemail.com'],
    ['a subdomain of a blocked domain', 'example.org', 'friend@mail.example.org'],
  ])('refuses a redeemer at %s', async (_what, blocked, redeemer) => {
    // Prepare
    pipeline = await Pipeline.start({ env: { BLOCKED_EMAIL_DOMAINS: blocked } });
    const { uuid, body } = referralBody({ redeemer });

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'blocked_domain' });
    expect(pipeline.shopify.cards).toHaveLength(0);
  });
});
