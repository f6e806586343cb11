import { signWebhookBody } from '../../local/vouch';
import { Pipeline, referralBody, signedProperties } from '../support/pipeline';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';

/**
 * PostHog's project key is public (every page that loads posthog-js has it), so anyone can capture
 * `referral redeemed` events; the webhook's bearer token and signature prove only that PostHog sent
 * them, and the reconciler finds them too. Twelve forged events once earned 24 gift cards, and one
 * naming a real redeemer used up that person's one reward. End to end on the emulators: only a
 * referral the app's backend signed (lib/domain/vouch.ts) is paid, by either path.
 */
describe('forged referrals: only the ones the app vouched for are paid', () => {
  let pipeline: Pipeline;
  const MINUTE = 60_000;

  afterEach(async () => {
    await pipeline?.stop();
  });

  it('refuses twelve unsigned referral events through the webhook: REJECTED unsigned_referral, no gift card, no email', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const forged = Array.from({ length: 12 }, () => referralBody());

    // Act
    const answers = [];
    for (const { body } of forged) answers.push((await pipeline.post(body, {}, { sign: false })).statusCode);
    await pipeline.drain();

    // Assess: queued (ingest cannot tell), then refused by the worker
    expect(answers).toEqual(Array(12).fill(202));
    for (const { uuid } of forged) {
      expect(await pipeline.record(uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'unsigned_referral' });
    }
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.events).toHaveLength(0);
  });

  it('refuses a referral signed with another key as bad_referral_signature', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { uuid, body } = referralBody();
    const wronglySigned = signWebhookBody(body, 'not-the-apps-key-but-long-enough-0123456789');

    // Act
    await pipeline.post(wronglySigned);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'bad_referral_signature' });
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it("refuses a genuine referral's signature on a forged event naming another redeemer", async () => {
    // Prepare: the signature of someone's genuine referral, copied onto an event for the forger
    pipeline = await Pipeline.start();
    const genuine = signWebhookBody(referralBody().body, pipeline.signingKey);
    const signature = (genuine.event as { properties: { referral_signature: string } }).properties.referral_signature;
    const forged = referralBody({ redeemer: 'forger@example.net' });
    (forged.body.event as { properties: Record<string, unknown> }).properties.referral_signature = signature;

    // Act
    await pipeline.post(forged.body);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(forged.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'bad_referral_signature' });
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it("does not use up a real redeemer's reward: their genuine referral after a forged one is paid", async () => {
    // Prepare: a forged event names the real redeemer first, and is refused
    pipeline = await Pipeline.start();
    const redeemer = 'real.redeemer@example.com';
    const forged = referralBody({ referrer: 'forger@example.net', redeemer });
    await pipeline.post(forged.body, {}, { sign: false });
    await pipeline.drain();
    const genuine = referralBody({ referrer: 'friend@example.com', redeemer });

    // Act
    await pipeline.post(genuine.body);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(forged.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'unsigned_referral' });
    expect(await pipeline.record(genuine.uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.cardsFor(genuine.uuid)).toHaveLength(2);
    expect(pipeline.shopify.cards).toHaveLength(2);
    expect(pipeline.customerio.events.map((event) => event.identifier)).toEqual([redeemer]);
  });

  it('through the reconciler, pays the signed referral PostHog has and refuses the unsigned one', async () => {
    // Prepare: two referrals captured straight into PostHog (no webhook), one signed by the app
    pipeline = await Pipeline.start();
    const capture = (referral: ReturnType<typeof referralBody>, properties: Record<string, unknown>) =>
      pipeline.posthog.record({
        uuid: referral.uuid,
        event: 'referral redeemed',
        distinctId: referral.redeemer,
        properties,
        timestamp: new Date(Date.now() - 30 * MINUTE).toISOString(),
        personEmail: referral.redeemer,
      });
    const signed = referralBody();
    const unsigned = referralBody();
    capture(signed, signedProperties(signed.body, pipeline.signingKey));
    capture(unsigned, (unsigned.body.event as { properties: Record<string, unknown> }).properties);

    // Act
    const result = await pipeline.reconcile({ RECONCILE_FROM: new Date(Date.now() - 60 * MINUTE).toISOString() });
    await pipeline.drain();

    // Assess: both were missing and queued; only the signed one is paid
    expect(result).toMatchObject({ status: 'done', seen: 2, queued: 2 });
    expect(await pipeline.record(signed.uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.cardsFor(signed.uuid)).toHaveLength(2);
    expect(await pipeline.record(unsigned.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'unsigned_referral' });
    expect(pipeline.cardsFor(unsigned.uuid)).toHaveLength(0);
    expect(pipeline.customerio.events).toHaveLength(1);
  });

  it('with REFERRAL_SIGNATURES=off, pays an unsigned referral as before signatures existed', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REFERRAL_SIGNATURES: 'off' } });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body, {}, { sign: false });
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
  });

  it('without REFERRAL_SIGNING_KEY pays and refuses nothing: the referral waits in the DLQ and is paid once the key is set and it is redriven', async () => {
    // Prepare: signatures required, the worker's secret has no key yet
    pipeline = await Pipeline.start({ env: { REFERRAL_SIGNING_KEY: '' } });
    const { uuid, body } = referralBody();
    await pipeline.post(signWebhookBody(body, pipeline.signingKey));
    await pipeline.drain();
    const parked = await pipeline.record(uuid);

    // Act: the key is put in the worker's secret, the operator redrives
    pipeline.env.REFERRAL_SIGNING_KEY = pipeline.signingKey;
    const moved = await pipeline.redrive();
    await pipeline.drain();

    // Assess
    expect(parked).toMatchObject({ status: 'FAILED', failureReason: 'config_invalid' });
    expect(parked?.lastError ?? '').toContain('REFERRAL_SIGNING_KEY is not set');
    expect(moved).toBe(1);
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
  });

  it('pays a referral the app signed with the old key while REFERRAL_SIGNING_KEY_PREVIOUS holds it, and refuses it once removed', async () => {
    // Prepare: the worker's key rotated after the app signed two referrals with the old one
    const OLD_KEY = TEST_REFERRAL_SIGNING_KEY;
    pipeline = await Pipeline.start({
      env: { REFERRAL_SIGNING_KEY: 'the-new-referral-signing-key-0123456789abcdef', REFERRAL_SIGNING_KEY_PREVIOUS: OLD_KEY },
    });
    const inFlight = referralBody();
    const late = referralBody();
    const fresh = referralBody();

    // Act: one arrives during the window, one signed with the new key, one after the old key is dropped
    await pipeline.post(signWebhookBody(inFlight.body, OLD_KEY));
    await pipeline.post(fresh.body);
    await pipeline.drain();
    delete pipeline.env.REFERRAL_SIGNING_KEY_PREVIOUS;
    await pipeline.post(signWebhookBody(late.body, OLD_KEY));
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(inFlight.uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.cardsFor(inFlight.uuid)).toHaveLength(2);
    expect(await pipeline.record(fresh.uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(await pipeline.record(late.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'bad_referral_signature' });
  });
});
