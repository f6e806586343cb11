import { randomUUID } from 'node:crypto';
import type { LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { releaseDue } from '../../lib/domain/lifecycle/release';
import { QUALIFY_GRACE_MS } from '../../lib/domain/qualify';
import { signPersonEvent } from '../../lib/domain/vouch';
import { stackReleaser, untilReleaseTime } from '../support/lifecycle';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * Where a referral stands, end to end: the worker and the releaser as deployed (their status
 * senders built from CUSTOMERIO_STATUS_EVENT, the releaser's reading the worker's settings) against
 * the fake Customer.io, which keeps one event per id as Customer.io does. And a refund of a paid
 * referral with REVOKE_PAID, finished by the releaser in the fake shop.
 */
const QUALIFY = 'subscription paid';
const REFUND = 'subscription refunded';
const STATUS_EVENT = 'referral_status';

describe('status events and refunds through the pipeline', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const send = async (body: unknown) => {
    const response = await pipeline.post(body);
    expect(response.statusCode).toBe(202);
  };

  /** The redeemer's person event, signed as the app's backend signs it. */
  const personEvent = (name: string, body: Record<string, unknown>) => {
    const event = body.event as { distinct_id: string };
    const person = body.person as { id: string; properties: { email: string } };
    const uuid = randomUUID();
    return {
      event: {
        uuid,
        event: name,
        distinct_id: event.distinct_id,
        properties: {
          referral_signature: signPersonEvent(pipeline.signingKey, { eventName: name, distinctId: event.distinct_id, eventId: uuid }),
        },
        timestamp: new Date().toISOString(),
      },
      person: { id: person.id, properties: { email: person.properties.email } },
    };
  };

  /** The status events Customer.io kept on the redeemer's profile, in order (a repeated id is kept once). */
  const statuses = (redeemer: string) =>
    pipeline.customerio.events
      .filter((event) => event.name === STATUS_EVENT && event.identifier === redeemer.toLowerCase())
      .map((event) => event.data.status);

  const recordOf = async (uuid: string) => (await pipeline.record(uuid)) as LifecycleRecord | undefined;

  it('tells a referral that waits, qualifies, is held and paid each status once, across a crash and a redelivery', async () => {
    // Prepare: a crash after the wait is stored (before it is told), and one after the fulfilment event (before `rewarded`)
    const crashed = new Set<string>();
    pipeline = await Pipeline.start({
      env: { QUALIFY_EVENT: QUALIFY, CUSTOMERIO_STATUS_EVENT: STATUS_EVENT, REWARD_HOLD: '3s' },
      checkpoint: (step) => {
        if ((step === 'decided' || step === 'customerio') && !crashed.has(step)) {
          crashed.add(step);
          throw new Error(`simulated crash after ${step}`);
        }
      },
    });
    const { uuid, body, redeemer } = referralBody();

    // Act: the referral, its qualifying event, the releaser once the hold is over, then the referral delivered again
    await send(body);
    await pipeline.drain();
    await send(personEvent(QUALIFY, body));
    await pipeline.drain();
    const held = await recordOf(uuid);
    await untilReleaseTime(held);
    await releaseDue(stackReleaser(pipeline));
    await pipeline.drain();
    await send(body);
    await pipeline.drain();

    // Assess
    expect(crashed).toEqual(new Set(['decided', 'customerio']));
    expect(held?.status).toBe('HELD');
    expect((await recordOf(uuid))?.status).toBe('COMPLETED');
    expect(statuses(redeemer)).toEqual(['awaiting_qualification', 'held', 'rewarded']);
    expect(pipeline.customerio.duplicatesIgnored).toBeGreaterThan(0);
    expect(pipeline.customerio.events.filter((event) => event.name !== STATUS_EVENT)).toHaveLength(1);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });

  it('tells an expired referral `not_qualified` once, and captures it, over two releaser runs', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { QUALIFY_EVENT: QUALIFY, QUALIFY_WITHIN: '1s', CUSTOMERIO_STATUS_EVENT: STATUS_EVENT } });
    const { uuid, body, redeemer } = referralBody();
    await send(body);
    await pipeline.drain();
    const releaser = stackReleaser(pipeline, { now: () => Date.now() + QUALIFY_GRACE_MS + 5_000 });

    // Act
    const first = await releaseDue(releaser);
    const second = await releaseDue(releaser);

    // Assess
    expect([first.notQualified, second.notQualified]).toEqual([1, 0]);
    expect((await recordOf(uuid))?.status).toBe('NOT_QUALIFIED');
    expect(statuses(redeemer)).toEqual(['awaiting_qualification', 'not_qualified']);
    expect(
      pipeline.posthog.captures.filter((capture) => capture.properties.referral_event_id === uuid).map((capture) => capture.event),
    ).toEqual(['referral reward not_qualified']);
  });

  it('tells a referral cancelled by its refund `cancelled` once, however often the refund comes', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { QUALIFY_EVENT: QUALIFY, REVOKE_EVENT: REFUND, CUSTOMERIO_STATUS_EVENT: STATUS_EVENT } });
    const { uuid, body, redeemer } = referralBody();
    await send(body);
    await pipeline.drain();
    const refund = personEvent(REFUND, body);

    // Act
    await send(refund);
    await send(refund);
    await send(personEvent(REFUND, body));
    await pipeline.drain();

    // Assess
    expect((await recordOf(uuid))?.status).toBe('REVOKED');
    expect(statuses(redeemer)).toEqual(['awaiting_qualification', 'cancelled']);
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it("with REVOKE_PAID, deactivates both rewards of a paid referral on its redeemer's refund in one releaser run, once", async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REVOKE_EVENT: REFUND, REVOKE_PAID: 'true', CUSTOMERIO_STATUS_EVENT: STATUS_EVENT } });
    const { uuid, body, redeemer } = referralBody();
    await send(body);
    await pipeline.drain();
    const refund = personEvent(REFUND, body);

    // Act: the refund, a releaser run, the refund again (a redelivery), a second run
    await send(refund);
    await pipeline.drain();
    const requested = await recordOf(uuid);
    const first = await releaseDue(stackReleaser(pipeline));
    await send(refund);
    await pipeline.drain();
    const second = await releaseDue(stackReleaser(pipeline));

    // Assess
    expect(requested).toMatchObject({ status: 'COMPLETED', lifecycleQueue: 'revoking' });
    expect([first.revoked, second.revoked, first.revokesFailed, second.revokesFailed]).toEqual([1, 0, [], []]);
    expect(pipeline.cardsFor(uuid).map((card) => card.enabled)).toEqual([false, false]);
    expect(pipeline.shopify.requests.filter((request) => request.operation === 'giftCardDeactivate')).toHaveLength(2);
    const record = await recordOf(uuid);
    expect(record).toMatchObject({ status: 'REVOKED', revokeReason: REFUND });
    expect([record?.referrerDeactivatedAt, record?.redeemerDeactivatedAt, record?.revokedBeforePayout]).toEqual([
      expect.any(String),
      expect.any(String),
      undefined,
    ]);
    expect(record?.lifecycleQueue).toBeUndefined();
    expect(
      pipeline.posthog.captures.filter((capture) => capture.properties.referral_event_id === uuid).map((capture) => capture.event),
    ).toEqual(['referral reward fulfilled', 'referral reward revoked']);
    expect(statuses(redeemer)).toEqual(['rewarded', 'cancelled']);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });
});
