import { PostHogCapture } from '../../lib/adapters/posthog-capture';
import type { OutcomeCapture } from '../../lib/domain/notify-ports';
import type { Fetch } from '../../lib/infra/http';

const EVENT_ID = '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d';

/** A fetch that records each body and answers 200. */
function recordingFetch(): { fetch: Fetch; bodies: Record<string, unknown>[] } {
  const bodies: Record<string, unknown>[] = [];
  const fetch = (async (_url: string, init: RequestInit) => {
    bodies.push(JSON.parse(init.body as string) as Record<string, unknown>);
    return new Response('{"status":"Ok"}', { status: 200 });
  }) as unknown as Fetch;
  return { fetch, bodies };
}

function outcome(overrides: Partial<OutcomeCapture> = {}): OutcomeCapture {
  return {
    outcome: 'fulfilled',
    eventId: EVENT_ID,
    distinctId: 'person-1',
    referrerEmail: 'referrer@example.com',
    redeemerEmail: 'redeemer@example.com',
    rewardType: 'gift_card',
    rewardAmount: '25.00',
    ...overrides,
  };
}

async function track(capture: OutcomeCapture): Promise<Record<string, unknown>> {
  const { fetch, bodies } = recordingFetch();
  await new PostHogCapture({ host: 'https://ph.example', apiKey: 'phc_key', fetch }).track(capture);
  return bodies[0];
}

describe('PostHogCapture.track', () => {
  it('captures `referral reward <outcome>` on the person, with the uuid of that outcome of that referral', async () => {
    // Prepare
    const fulfilled = outcome();

    // Act
    const body = await track(fulfilled);

    // Assess: the uuid pinned, so a redeploy keeps deduping captures sent before it
    expect(body).toMatchObject({
      api_key: 'phc_key',
      event: 'referral reward fulfilled',
      distinct_id: 'person-1',
      uuid: 'e76a0ae4-744b-8be3-a730-bec5f77cbe1a',
    });
  });

  it("sends the referral under PostHog's property names, the amount as a number, in the insights' order", async () => {
    // Prepare
    const fulfilled = outcome();

    // Act
    const body = await track(fulfilled);

    // Assess
    expect(JSON.stringify(body.properties)).toBe(
      JSON.stringify({
        referral_event_id: EVENT_ID,
        reward_type: 'gift_card',
        reward_amount: 25,
        referrer_email: 'referrer@example.com',
        redeemer_email: 'redeemer@example.com',
      }),
    );
  });

  it("adds a revoke's reason and before_payout as strings, after the referral's properties", async () => {
    // Prepare
    const revoked = outcome({ outcome: 'revoked', extra: { reason: 'fraud', beforePayout: false } });

    // Act
    const body = await track(revoked);

    // Assess
    expect(body.uuid).toBe('651fc610-41a6-84e7-90d1-09a977d41904');
    expect(Object.entries(body.properties as object).slice(-2)).toEqual([
      ['reason', 'fraud'],
      ['before_payout', 'false'],
    ]);
  });

  it("adds a hold's release time as ISO and a release's review decision", async () => {
    // Prepare
    const held = outcome({ outcome: 'held', extra: { releaseAt: Date.UTC(2025, 0, 2, 3, 4, 5) } });
    const released = outcome({ outcome: 'released', extra: { reviewDecision: 'approved' } });

    // Act
    const [heldBody, releasedBody] = [await track(held), await track(released)];

    // Assess
    expect(heldBody.properties).toMatchObject({ release_at: '2025-01-02T03:04:05.000Z' });
    expect(releasedBody.properties).toMatchObject({ review_decision: 'approved' });
  });

  it('never sends a property the outcome does not have', async () => {
    // Prepare
    const rejected = outcome({ outcome: 'rejected', extra: { reason: 'blocked_domain' } });

    // Act
    const body = await track(rejected);

    // Assess
    expect(Object.keys(body.properties as object)).toEqual([
      'referral_event_id',
      'reward_type',
      'reward_amount',
      'referrer_email',
      'redeemer_email',
      'reason',
    ]);
  });
});

describe('PostHogCapture.track: the qualification outcomes', () => {
  it.each([
    ['qualified', 'referral reward qualified'],
    ['not_qualified', 'referral reward not_qualified'],
    ['cancelled', 'referral reward cancelled'],
  ] as const)('captures %s as `%s` on the redeemer, with a uuid of its own, the same on a retry', async (name, event) => {
    // Prepare
    const capture = outcome({ outcome: name });

    // Act
    const first = await track(capture);
    const retried = await track({ ...capture });
    const fulfilled = await track(outcome());

    // Assess
    expect(first).toMatchObject({ event, distinct_id: 'person-1' });
    expect(retried.uuid).toBe(first.uuid);
    expect(first.uuid).not.toBe(fulfilled.uuid);
  });

  it('gives the three outcomes of one referral three different uuids', async () => {
    // Act
    const bodies = await Promise.all(
      (['qualified', 'not_qualified', 'cancelled'] as const).map((name) => track(outcome({ outcome: name }))),
    );

    // Assess
    expect(new Set(bodies.map((body) => body.uuid)).size).toBe(3);
  });

  it("adds a cancellation's reason and never a code", async () => {
    // Prepare
    const code = 'GIFTCODE12345678';
    const cancelled = { ...outcome({ outcome: 'cancelled', extra: { reason: 'refunded' } }), referrerCode: code } as OutcomeCapture;

    // Act
    const body = await track(cancelled);

    // Assess
    expect(body.properties).toMatchObject({ reason: 'refunded', referral_event_id: EVENT_ID });
    expect(JSON.stringify(body)).not.toContain(code);
  });
});
