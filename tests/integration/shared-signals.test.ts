import type { LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { formatReviewList, listReview } from '../../ops/review';
import type { Target } from '../../ops/target';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * REVIEW_SHARED_DEVICE / REVIEW_SHARED_IP through the real pipeline: the worker asks the sandbox
 * PostHog's Query API whether the referrer's and the redeemer's persons share a `$device_id` or
 * an `$ip`, from the events it has stored.
 */
describe('shared device and IP review guards', () => {
  let pipeline: Pipeline;

  beforeAll(async () => {
    pipeline = await Pipeline.start();
    Object.assign(pipeline.env, pipeline.posthog.queryEnv, { REVIEW_SHARED_DEVICE: 'true', REVIEW_SHARED_IP: 'true' });
  });
  afterAll(async () => {
    await pipeline?.stop();
  });

  const recordOf = async (uuid: string) => (await pipeline.record(uuid)) as LifecycleRecord | undefined;

  /** What posthog-js captures for a person browsing: a pageview with its device and IP, the person identified by email. */
  const browsed = (email: string, device: string, ip: string): void => {
    pipeline.posthog.record({
      event: '$pageview',
      distinctId: email,
      personEmail: email,
      properties: { $device_id: device, $ip: ip, $lib: 'web' },
    });
  };

  const referral = () => {
    const made = referralBody();
    const referrer = (made.body.event as { properties: { referrer_email: string } }).properties.referrer_email;
    return { ...made, referrer };
  };

  it('sends a referral to review when both persons used one device, and issues nothing', async () => {
    // Prepare
    const { uuid, body, referrer, redeemer } = referral();
    browsed(referrer, `device-${uuid}`, '198.51.100.1');
    browsed(redeemer, `device-${uuid}`, '203.0.113.9');

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'REVIEW', reviewReasons: ['shared_device'] });
    expect(pipeline.cardsFor(uuid)).toHaveLength(0);
  });

  it('lists a shared-device referral in review with its reason and both persons linked in PostHog', async () => {
    // Prepare
    const { uuid, body, referrer, redeemer } = referral();
    browsed(referrer, `device-${uuid}`, '198.51.100.2');
    browsed(redeemer, `device-${uuid}`, '203.0.113.2');
    await pipeline.post(body);
    await pipeline.drain();
    const target = { ddb: pipeline.ddb, tableName: pipeline.resources.tableName } as unknown as Target;

    // Act
    const items = await listReview(target, { appHost: 'https://eu.posthog.com', projectId: '42' });

    // Assess
    const item = items.find((listed) => listed.eventId === uuid);
    expect(item).toMatchObject({
      reasons: ['shared_device'],
      posthog: {
        referrer: `https://eu.posthog.com/project/42/person/${encodeURIComponent(referrer)}`,
        redeemer: `https://eu.posthog.com/project/42/person/${encodeURIComponent(redeemer)}`,
      },
    });
    expect(formatReviewList([item!])).toContain(`PostHog: referrer https://eu.posthog.com/project/42/person/`);
  });

  it('sends a referral to review when both persons came from one IP on different devices', async () => {
    // Prepare
    const { uuid, body, referrer, redeemer } = referral();
    browsed(referrer, `device-a-${uuid}`, '192.0.2.77');
    browsed(redeemer, `device-b-${uuid}`, '192.0.2.77');

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'REVIEW', reviewReasons: ['shared_ip'] });
    expect(pipeline.cardsFor(uuid)).toHaveLength(0);
  });

  it('pays two people who share neither, after one question to PostHog', async () => {
    // Prepare
    const { uuid, body, referrer, redeemer } = referral();
    browsed(referrer, `device-r-${uuid}`, '198.51.100.20');
    browsed(redeemer, `device-d-${uuid}`, '203.0.113.20');
    const asked = pipeline.posthog.queries.length;

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'COMPLETED' });
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
    expect(pipeline.posthog.queries.slice(asked)).toEqual([
      expect.objectContaining({ referrer_email: referrer, redeemer_email: redeemer }),
    ]);
  });

  it('does not count a server-side capture, which has no $device_id, as the same IP', async () => {
    // Prepare: both captured by the app backend (posthog-node), from the backend's one address
    const { uuid, body, referrer, redeemer } = referral();
    for (const email of [referrer, redeemer]) {
      pipeline.posthog.record({
        event: 'signed up',
        distinctId: email,
        personEmail: email,
        properties: { $ip: '10.0.0.1', $lib: 'posthog-node' },
      });
    }

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'COMPLETED' });
  });

  it.each(['http429', 'http503'] as const)('retries, and pays nothing meanwhile, while PostHog answers %s', async (fault) => {
    // Prepare
    const { uuid, body, referrer, redeemer } = referral();
    browsed(referrer, `device-r-${uuid}`, '198.51.100.30');
    browsed(redeemer, `device-d-${uuid}`, '203.0.113.30');
    pipeline.posthog.injectQueryFaults(fault);
    await pipeline.post(body);

    // Act
    await pipeline.poller.pollOnce(0);
    const during = await recordOf(uuid);
    const cardsDuring = pipeline.cardsFor(uuid).length;
    await pipeline.drain();

    // Assess
    expect(during?.status).toBe('IN_PROGRESS');
    expect(during?.lastError).toMatch(/PostHog query answered/);
    expect(cardsDuring).toBe(0);
    expect(await recordOf(uuid)).toMatchObject({ status: 'COMPLETED' });
  });
});
