import { randomUUID } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { PostHogCapture } from '../../lib/adapters/posthog-capture';
import { queueSender } from '../../lib/adapters/sqs/queue';
import { releaseDue } from '../../lib/domain/lifecycle/release';
import { QUALIFY_GRACE_MS } from '../../lib/domain/qualify';
import type { StatusMessage, StatusSender } from '../../lib/domain/status';
import { formatStatus, referralStatus } from '../../ops/status';
import { lifecycleIndex, lifecycleLedger } from '../support/lifecycle';
import { pipelineSteps, redeemerOf } from '../support/person-events';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * Pay on value through the real pipeline (ingest, queue, worker, releaser, dynalite): a referral
 * waits for its redeemer's QUALIFY_EVENT, then is paid on today's path, exactly once; expires
 * NOT_QUALIFIED; is cancelled by REVOKE_EVENT.
 */
const QUALIFY = 'subscription paid';
const REFUND = 'subscription refunded';
const ENV = { QUALIFY_EVENT: QUALIFY, REVOKE_EVENT: REFUND };

/** Every status the worker and releaser told, and what Customer.io keeps: one event per (referral, status), as its id dedupes. */
class StatusRecorder implements StatusSender {
  public readonly sent: StatusMessage[] = [];

  public async sendStatus(message: StatusMessage): Promise<void> {
    this.sent.push(message);
  }

  public delivered(eventId: string): string[] {
    return [...new Set(this.sent.filter((message) => message.eventId === eventId).map((message) => message.status))];
  }
}

describe('pay on value', () => {
  let pipeline: Pipeline;
  let status: StatusRecorder;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const start = async (env: Record<string, string> = ENV, extra: Parameters<typeof Pipeline.start>[0] = {}) => {
    status = new StatusRecorder();
    pipeline = await Pipeline.start({ env, status, ...extra });
  };
  const { send, recordOf, event } = pipelineSteps(() => pipeline, { properties: { amount: 20 } });
  /** One releaser run as the schedule makes it, `aheadMs` in the future (a deadline passed), with the capture and status senders. */
  const releaseAt = (aheadMs: number) =>
    releaseDue({
      ledger: lifecycleLedger(pipeline),
      index: lifecycleIndex(pipeline),
      enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl),
      resendAfterMs: 0,
      now: () => Date.now() + aheadMs,
      posthog: new PostHogCapture({ host: pipeline.posthog.env.POSTHOG_HOST, apiKey: pipeline.posthog.env.POSTHOG_API_KEY }),
      status,
    });
  /** The outcomes captured for a referral, as PostHog keeps them: a repeated uuid is one event. */
  const captured = (uuid: string) => [
    ...new Map(
      pipeline.posthog.captures
        .filter((capture) => capture.properties.referral_event_id === uuid)
        .map((capture) => [capture.uuid, capture.event]),
    ).values(),
  ];

  it('keeps an accepted referral waiting, nothing issued, until its deadline, and says so', async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();

    // Act
    await send(body);
    await pipeline.drain();

    // Assess
    const record = await recordOf(uuid);
    expect(record).toMatchObject({ status: 'AWAITING', decision: 'ACCEPTED', lifecycleQueue: 'awaiting' });
    expect(Number(record?.qualifyBy)).toBe(redeemerOf(body).capturedAt + 30 * 86_400_000);
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.events).toHaveLength(0);
    expect(status.delivered(uuid)).toEqual(['awaiting_qualification']);
  });

  it("pays a waiting referral once its redeemer's qualifying event arrives by the webhook", async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();
    await send(body);
    await pipeline.drain();
    const qualifying = event(QUALIFY, redeemerOf(body));

    // Act
    await send(qualifying.body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'COMPLETED', qualifyingEventId: qualifying.uuid });
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
    expect(pipeline.customerio.events).toHaveLength(1);
    expect(captured(uuid)).toEqual(expect.arrayContaining(['referral reward qualified', 'referral reward fulfilled']));
    expect(status.delivered(uuid)).toEqual(['awaiting_qualification', 'rewarded']);
    const mark = await pipeline.ddb.send(
      new GetCommand({ TableName: pipeline.resources.tableName, Key: { pk: `person-event#${qualifying.uuid}` } }),
    );
    expect(mark.Item).toMatchObject({ role: 'qualify' });
    expect(Number(mark.Item?.ttl)).toBeGreaterThan(Date.now() / 1000 + 30 * 86_400);
  });

  it('pays a referral whose qualifying event happened after it but reached us first', async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();
    const who = redeemerOf(body);
    const qualifying = event(QUALIFY, who, { at: who.capturedAt + 1_000 });

    // Act
    await send(qualifying.body);
    await pipeline.drain();
    await send(body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'COMPLETED', qualifyingEventId: qualifying.uuid });
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
  });

  it('never qualifies a referral on an event from before it was captured', async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();
    const who = redeemerOf(body);
    const earlier = event(QUALIFY, who, { at: who.capturedAt - 60_000 });

    // Act
    await send(earlier.body);
    await pipeline.drain();
    await send(body);
    await pipeline.drain();

    // Assess
    expect((await recordOf(uuid))?.status).toBe('AWAITING');
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it('pays exactly once under duplicates of both the referral and the qualifying event', async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();
    const qualifying = event(QUALIFY, redeemerOf(body));
    const another = event(QUALIFY, redeemerOf(body));

    // Act: the referral twice, its qualifying event three times and a second qualifying event
    await send(body);
    await send(body);
    await pipeline.drain();
    await Promise.all([send(qualifying.body), send(qualifying.body), send(another.body)]);
    await send(qualifying.body);
    await send(body);
    await pipeline.drain();

    // Assess
    expect((await recordOf(uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
    expect(pipeline.customerio.events).toHaveLength(1);
    expect(pipeline.posthog.captures.filter((capture) => capture.event === 'referral reward fulfilled')).toHaveLength(1);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });

  it("leaves a referral waiting when another person's event arrives", async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();
    const stranger = { personId: randomUUID(), distinctId: 'someone-else', email: 'someone.else@example.com' };
    await send(body);
    await pipeline.drain();

    // Act
    await send(event(QUALIFY, stranger).body);
    await pipeline.drain();

    // Assess
    expect((await recordOf(uuid))?.status).toBe('AWAITING');
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it('does nothing with an unsigned or a forged qualifying event', async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();
    await send(body);
    await pipeline.drain();

    // Act
    await send(event(QUALIFY, redeemerOf(body), { signature: 'none' }).body);
    await send(event(QUALIFY, redeemerOf(body), { signature: 'forged' }).body);
    await pipeline.drain();

    // Assess
    expect((await recordOf(uuid))?.status).toBe('AWAITING');
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });

  it('makes a referral past its deadline NOT_QUALIFIED once, releases its claims, and judges a later referral of that person on its own', async () => {
    // Prepare
    await start({ ...ENV, QUALIFY_WITHIN: '1s' });
    const { uuid, body, redeemer } = referralBody();
    await send(body);
    await pipeline.drain();
    const pastDeadline = QUALIFY_GRACE_MS + 5_000;

    // Act: two releaser runs, then the (late) qualifying event, then a new referral of the same redeemer
    const first = await releaseAt(pastDeadline);
    const second = await releaseAt(pastDeadline);
    await send(event(QUALIFY, redeemerOf(body)).body);
    const later = referralBody({ redeemer });
    await send(later.body);
    await pipeline.drain();

    // Assess
    expect([first.notQualified, second.notQualified]).toEqual([1, 0]);
    expect(await recordOf(uuid)).toMatchObject({ status: 'NOT_QUALIFIED' });
    expect((await recordOf(uuid))?.lifecycleQueue).toBeUndefined();
    expect(captured(uuid)).toEqual(['referral reward not_qualified']);
    expect(status.delivered(uuid)).toEqual(['awaiting_qualification', 'not_qualified']);
    expect((await recordOf(later.uuid))?.status).toBe('AWAITING');
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it('shows a waiting referral in `ops status` as AWAITING_QUALIFICATION with its deadline, and an expired one as NOT_QUALIFIED', async () => {
    // Prepare: one referral past a short window, expired by the releaser; then one with the default window
    await start({ ...ENV, QUALIFY_WITHIN: '1s' });
    const expiredOne = referralBody();
    await send(expiredOne.body);
    await pipeline.drain();
    await releaseAt(QUALIFY_GRACE_MS + 5_000);
    pipeline.env.QUALIFY_WITHIN = '30d';
    const fresh = referralBody();
    await send(fresh.body);
    await pipeline.drain();
    const source = { ddb: pipeline.ddb, tableName: pipeline.resources.tableName };

    // Act
    const waitingText = formatStatus(await referralStatus(source, fresh.uuid));
    const expiredText = formatStatus(await referralStatus(source, expiredOne.uuid));

    // Assess
    const deadline = new Date(Number((await recordOf(fresh.uuid))?.qualifyBy)).toISOString();
    expect(waitingText).toContain(`Referral ${fresh.uuid}: AWAITING_QUALIFICATION`);
    expect(waitingText).toContain(`qualify by   ${deadline}`);
    expect(expiredText).toContain(`Referral ${expiredOne.uuid}: NOT_QUALIFIED`);
    expect(expiredText).toContain('not qualified');
  });

  it('counts the referrals waiting in each releaser run', async () => {
    // Prepare
    await start();
    await send(referralBody().body);
    await send(referralBody().body);
    await pipeline.drain();

    // Act
    const run = await releaseAt(0);

    // Assess
    expect(run).toMatchObject({ awaiting: 2, notQualified: 0 });
  });

  it('cancels a waiting referral on its redeemer’s refund, and a later qualifying event pays nothing', async () => {
    // Prepare
    await start();
    const { uuid, body } = referralBody();
    await send(body);
    await pipeline.drain();

    // Act
    await send(event(REFUND, redeemerOf(body)).body);
    await pipeline.drain();
    await send(event(QUALIFY, redeemerOf(body)).body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'REVOKED', revokedBeforePayout: true, revokeReason: REFUND });
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(captured(uuid)).toEqual(['referral reward cancelled']);
    expect(status.delivered(uuid)).toEqual(['awaiting_qualification', 'cancelled']);
  });

  it('cancels a held referral on a refund and returns nothing paid', async () => {
    // Prepare: qualification off, a hold: the refund finds it HELD
    await start({ REVOKE_EVENT: REFUND, REWARD_HOLD: '1h' });
    const { uuid, body } = referralBody();
    await send(body);
    await pipeline.drain();

    // Act
    await send(event(REFUND, redeemerOf(body)).body);
    await send(event(REFUND, redeemerOf(body)).body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(uuid)).toMatchObject({ status: 'REVOKED', revokedBeforePayout: true });
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(status.delivered(uuid)).toEqual(['held', 'cancelled']);
  });

  it('with REVOKE_PAID, records the revoke of a paid referral on its refund; without it, leaves it paid', async () => {
    // Prepare
    await start({ REVOKE_EVENT: REFUND, REVOKE_PAID: 'true' });
    const paid = referralBody();
    await send(paid.body);
    await pipeline.drain();

    // Act
    await send(event(REFUND, redeemerOf(paid.body)).body);
    await pipeline.drain();
    pipeline.env.REVOKE_PAID = 'false';
    const kept = referralBody();
    await send(kept.body);
    await pipeline.drain();
    await send(event(REFUND, redeemerOf(kept.body)).body);
    await pipeline.drain();

    // Assess
    expect(await recordOf(paid.uuid)).toMatchObject({ status: 'COMPLETED', revokeReason: REFUND });
    expect((await recordOf(paid.uuid))?.revokeRequestedAt).toBeDefined();
    expect((await recordOf(kept.uuid))?.revokeRequestedAt).toBeUndefined();
    const source = { ddb: pipeline.ddb, tableName: pipeline.resources.tableName };
    expect(formatStatus(await referralStatus(source, paid.uuid))).toContain(
      'its revoke was requested (subscription refunded) but not finished',
    );
    expect(status.delivered(paid.uuid)).toEqual(['rewarded']);
  });

  it('tells each status once across crashes and retries of both events', async () => {
    // Prepare: a crash right after the wait is stored, and one after the first card of the payment
    const crashes = new Set<string>();
    const crashOnce = (step: string) => {
      if (crashes.has(step)) return;
      crashes.add(step);
      throw new Error(`simulated crash after ${step}`);
    };
    await start(ENV, { checkpoint: (step) => (step === 'decided' || step === 'card:referrer' ? crashOnce(step) : undefined) });
    const { uuid, body } = referralBody();

    // Act
    await send(body);
    await pipeline.drain();
    await send(event(QUALIFY, redeemerOf(body)).body);
    await pipeline.drain();

    // Assess
    expect(crashes).toEqual(new Set(['decided', 'card:referrer']));
    expect((await recordOf(uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
    expect(status.delivered(uuid)).toEqual(['awaiting_qualification', 'rewarded']);
    expect(new Set(status.sent.map((message) => message.recipient))).toEqual(new Set([(await recordOf(uuid))?.redeemerEmail]));
  });
});
