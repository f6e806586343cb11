import { randomUUID } from 'node:crypto';
import { Pipeline, referralBody } from '../support/pipeline';

/** The referral program's rules, enforced atomically through the ledger, and its outcomes tracked in PostHog. */
describe('program rules and outcome tracking', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const statusOf = async (uuid: string) => (await pipeline.record(uuid))?.status;

  it('refuses a self-referral written differently (Gmail dots, +tag, case), issues nothing, and never retries it', async () => {
    // Prepare
    pipeline = await Pipeline.start();
    const { uuid, body } = referralBody({ referrer: 'Jane.Doe+friends@gmail.com', redeemer: 'janedoe@googlemail.com' });

    // Act: delivered, then delivered again
    await pipeline.post(body);
    await pipeline.drain();
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await pipeline.record(uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'self_referral' });
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.events).toHaveLength(0);
    expect(await pipeline.deadLetters()).toHaveLength(0);
    expect(pipeline.posthog.captures.map((c) => [c.event, c.properties.reason])).toEqual([['referral reward rejected', 'self_referral']]);
  });

  it('rewards a redeemer once, whichever referrer and event uuid come second, even concurrently', async () => {
    // Prepare: the same person redeems through two referrers at once, spelled differently
    pipeline = await Pipeline.start();
    const first = referralBody({ referrer: `a-${randomUUID()}@example.com`, redeemer: 'same.person@example.com' });
    const second = referralBody({ referrer: `b-${randomUUID()}@example.com`, redeemer: ' Same.Person@Example.com ' });

    // Act
    await pipeline.post(first.body);
    await pipeline.post(second.body);
    await Promise.all([pipeline.drain(), pipeline.drain()]);

    // Assess
    const statuses = [await statusOf(first.uuid), await statusOf(second.uuid)].sort();
    expect(statuses).toEqual(['COMPLETED', 'REJECTED']);
    const refused = (await pipeline.record(first.uuid))?.status === 'REJECTED' ? first.uuid : second.uuid;
    expect((await pipeline.record(refused))?.rejectionReason).toBe('redeemer_already_rewarded');
    expect(pipeline.shopify.cards).toHaveLength(2);
    expect(pipeline.customerio.events).toHaveLength(1);
  });

  it('never lets concurrent referrals push a referrer past MAX_REWARDS_PER_REFERRER', async () => {
    // Prepare: six friends redeem one referrer's invite at once; the cap is three
    pipeline = await Pipeline.start({ env: { MAX_REWARDS_PER_REFERRER: '3' } });
    const referrals = Array.from({ length: 6 }, () => referralBody({ referrer: 'popular@example.com' }));
    for (const { body } of referrals) await pipeline.post(body);

    // Act
    await Promise.all([pipeline.drain(), pipeline.drain()]);

    // Assess
    const records = await Promise.all(referrals.map(({ uuid }) => pipeline.record(uuid)));
    expect(records.filter((r) => r?.status === 'COMPLETED')).toHaveLength(3);
    expect(records.filter((r) => r?.status === 'REJECTED').map((r) => r?.rejectionReason)).toEqual([
      'referrer_cap_reached',
      'referrer_cap_reached',
      'referrer_cap_reached',
    ]);
    expect(pipeline.shopify.cards).toHaveLength(6);
  });

  it("leaves a redeemer refused for the referrer's cap free to be rewarded through another referrer", async () => {
    // Prepare: the referrer's one slot is taken
    pipeline = await Pipeline.start({ env: { MAX_REWARDS_PER_REFERRER: '1' } });
    await pipeline.post(referralBody({ referrer: 'capped@example.com' }).body);
    await pipeline.drain();
    const capped = referralBody({ referrer: 'capped@example.com', redeemer: 'newcomer@example.com' });
    await pipeline.post(capped.body);
    await pipeline.drain();
    expect(await pipeline.record(capped.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'referrer_cap_reached' });

    // Act
    const other = referralBody({ referrer: 'someone-else@example.com', redeemer: 'newcomer@example.com' });
    await pipeline.post(other.body);
    await pipeline.drain();

    // Assess
    expect(await statusOf(other.uuid)).toBe('COMPLETED');
  });

  it('refuses referrals from or to a blocked email domain', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { BLOCKED_EMAIL_DOMAINS: 'mailinator.com, @tempmail.dev' } });
    const fromBlocked = referralBody({ referrer: 'x@Mailinator.com' });
    const toBlocked = referralBody({ redeemer: 'y@tempmail.dev' });

    // Act
    await pipeline.post(fromBlocked.body);
    await pipeline.post(toBlocked.body);
    await pipeline.drain();

    // Assess
    for (const { uuid } of [fromBlocked, toBlocked]) {
      expect(await pipeline.record(uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'blocked_domain' });
    }
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it('captures "referral reward fulfilled" into PostHog once per referral, with one uuid, under retries and duplicates', async () => {
    // Prepare: PostHog fails once and loses one answer after recording the event
    pipeline = await Pipeline.start({ workerTimeoutMs: 4_500 });
    pipeline.posthog.injectFaults('http503', 'lost-response');
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.post(body);
    await pipeline.drain();

    // Assess: the lost answer made us resend the same uuid, which PostHog dedupes; nothing else was sent twice
    const captures = pipeline.posthog.captures;
    expect(new Set(captures.map((c) => c.uuid)).size).toBe(1);
    expect(captures.every((c) => c.event === 'referral reward fulfilled')).toBe(true);
    expect(captures[0].properties).toMatchObject({ referral_event_id: uuid, reward_type: 'gift_card', reward_amount: 25 });
    const record = await pipeline.record(uuid);
    expect(record?.status).toBe('COMPLETED');
    expect(JSON.stringify(captures)).not.toContain(record!.referrerCode);
    expect(JSON.stringify(captures)).not.toContain(record!.redeemerCode);
  });

  it('gives both cards the expiry REWARD_EXPIRES_DAYS sets, and records it per reward', async () => {
    // Prepare: the first attempt dies right after the codes and the date are persisted
    let crashed = false;
    pipeline = await Pipeline.start({
      env: { REWARD_EXPIRES_DAYS: '30' },
      checkpoint: (step) => {
        if (step === 'begun' && !crashed) {
          crashed = true;
          throw new Error('simulated crash');
        }
      },
    });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const record = await pipeline.record(uuid);
    const expected = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    expect(record).toMatchObject({ referrerExpiresOn: expected, redeemerExpiresOn: expected });
    expect(pipeline.shopify.cards.map((card) => card.expiresOn)).toEqual([expected, expected]);
  });

  it('skips the PostHog step when no POSTHOG_API_KEY is configured', async () => {
    // Prepare
    pipeline = await Pipeline.start({ capture: false });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    const record = await pipeline.record(uuid);
    expect(record?.status).toBe('COMPLETED');
    expect(record?.posthogAt).toBeUndefined();
    expect(pipeline.posthog.captures).toHaveLength(0);
  });
});
