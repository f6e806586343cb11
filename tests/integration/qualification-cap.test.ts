import { randomUUID } from 'node:crypto';
import type { LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { queueSender } from '../../lib/adapters/sqs/queue';
import { releaseDue } from '../../lib/domain/lifecycle/release';
import { QUALIFY_GRACE_MS } from '../../lib/domain/qualify';
import { signPersonEvent } from '../../lib/domain/vouch';
import { lifecycleIndex, lifecycleLedger } from '../support/lifecycle';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * MAX_REWARDS_PER_REFERRER under pay on value, through the real pipeline (ingest, queue, worker,
 * releaser, dynalite): the cap limits rewards, so it counts the referrals that qualify, first
 * qualified first served; a referral waiting for its qualifying event holds no slot.
 */
const QUALIFY = 'subscription paid';
const ENV = { QUALIFY_EVENT: QUALIFY, MAX_REWARDS_PER_REFERRER: '1' };

/** The redeemer's signed qualifying event for a referralBody, as the app's backend captures it. */
function qualifyingEventOf(referral: Record<string, unknown>, key: string): Record<string, unknown> {
  const { distinct_id: distinctId } = referral.event as { distinct_id: string };
  const person = referral.person as { id: string; properties: { email: string } };
  const uuid = randomUUID();
  return {
    event: {
      uuid,
      event: QUALIFY,
      distinct_id: distinctId,
      properties: { referral_signature: signPersonEvent(key, { eventName: QUALIFY, distinctId, eventId: uuid }) },
      timestamp: new Date().toISOString(),
    },
    person: { id: person.id, properties: { email: person.properties.email } },
  };
}

describe("the referrer's cap under pay on value", () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const recordOf = async (uuid: string) => (await pipeline.record(uuid)) as LifecycleRecord | undefined;
  const send = async (body: unknown) => {
    const response = await pipeline.post(body);
    expect(response.statusCode).toBe(202);
  };
  const qualify = async (referral: { body: Record<string, unknown> }) => {
    await send(qualifyingEventOf(referral.body, pipeline.signingKey));
    await pipeline.drain();
  };
  /** The outcomes captured for a referral, as PostHog keeps them: a repeated uuid is one event. */
  const captured = (uuid: string) => [
    ...new Set(
      pipeline.posthog.captures.filter((capture) => capture.properties.referral_event_id === uuid).map((capture) => capture.event),
    ),
  ];

  it('lets both referrals of a capped referrer wait, pays the one that qualifies first and refuses the other when it qualifies', async () => {
    // Prepare: cap 1; two referrals of one referrer wait
    pipeline = await Pipeline.start({ env: ENV });
    const referrer = `referrer-${randomUUID().slice(0, 8)}@example.com`;
    const first = referralBody({ referrer });
    const second = referralBody({ referrer });
    await send(first.body);
    await send(second.body);
    await pipeline.drain();
    const waiting = [(await recordOf(first.uuid))?.status, (await recordOf(second.uuid))?.status];

    // Act: the second one's redeemer pays first, then the first one's
    await qualify(second);
    await qualify(first);

    // Assess
    expect(waiting).toEqual(['AWAITING', 'AWAITING']);
    expect((await recordOf(second.uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(second.uuid)).toHaveLength(2);
    expect(await recordOf(first.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'referrer_cap_reached' });
    expect(pipeline.cardsFor(first.uuid)).toHaveLength(0);
    expect(captured(first.uuid)).toContain('referral reward rejected');
    // Refused, it holds nothing (the paid one keeps its own): its redeemer and person keys are free for a later referral.
    const personKey = (referral: { body: Record<string, unknown> }) => `id:${(referral.body.person as { id: string }).id}`;
    expect(await pipeline.ledger.holders({ kind: 'redeemer', person: first.redeemer })).toEqual([]);
    expect(await pipeline.ledger.holders({ kind: 'person', person: personKey(first) })).toEqual([]);
    expect(await pipeline.ledger.holders({ kind: 'redeemer', person: second.redeemer })).toEqual([second.uuid]);
    expect(await pipeline.ledger.holders({ kind: 'person', person: personKey(second) })).toEqual([second.uuid]);
    expect(await pipeline.ledger.holders({ kind: 'referrer', person: referrer })).toEqual([second.uuid]);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });

  it("pays a capped referrer's later referral that qualifies when the earlier one expired unqualified", async () => {
    // Prepare: cap 1; the first referral's window is a second, the second's the default 30 days
    pipeline = await Pipeline.start({ env: { ...ENV, QUALIFY_WITHIN: '1s' } });
    const referrer = `referrer-${randomUUID().slice(0, 8)}@example.com`;
    const first = referralBody({ referrer });
    await send(first.body);
    await pipeline.drain();
    pipeline.env.QUALIFY_WITHIN = '30d';
    const second = referralBody({ referrer });
    await send(second.body);
    await pipeline.drain();

    // Act: the releaser expires the first (past its deadline and grace); the second's redeemer pays
    await releaseDue({
      ledger: lifecycleLedger(pipeline),
      index: lifecycleIndex(pipeline),
      enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl),
      resendAfterMs: 0,
      now: () => Date.now() + QUALIFY_GRACE_MS + 5_000,
    });
    await qualify(second);

    // Assess
    expect((await recordOf(first.uuid))?.status).toBe('NOT_QUALIFIED');
    expect((await recordOf(second.uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(second.uuid)).toHaveLength(2);
    expect(pipeline.shopify.cards).toHaveLength(2);
  });
});
