import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { lifecycleIndex, releaseOnce, untilReleaseTime } from '../support/lifecycle';
import { Pipeline, referralBody } from '../support/pipeline';

/** REWARD_HOLD through the real pipeline: nothing issued while held, then exactly once. */
describe('reward hold', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const held = async (uuid: string) => (await pipeline.record(uuid)) as LifecycleRecord | undefined;

  it('records a held referral with its codes and release time and issues nothing', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REWARD_HOLD: '1h' } });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();
    const run = await releaseOnce(pipeline);

    // Assess
    const record = await held(uuid);
    expect(record).toMatchObject({ status: 'HELD', lifecycleQueue: 'held', decision: 'ACCEPTED' });
    expect(record?.referrerCode).toMatch(/^[A-Z0-9]{8}$/);
    expect(Number(record?.releaseAt)).toBe(Date.parse(record!.createdAt) + 3_600_000);
    expect(run.released).toBe(0);
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(pipeline.customerio.events).toHaveLength(0);
    expect(pipeline.posthog.captures.map((c) => c.event)).toEqual(['referral reward held']);
  });

  it('acknowledges duplicates and a redrive during the hold without issuing anything', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REWARD_HOLD: '1h' } });
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();
    const message = (await held(uuid))?.parkedMessage ?? '';

    // Act: two duplicate webhooks, and the message redriven from the DLQ
    await pipeline.post(body);
    await pipeline.post(body);
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.resources.deadLetterQueueUrl, MessageBody: message }));
    await pipeline.redrive();
    await pipeline.drain();

    // Assess
    expect((await held(uuid))?.status).toBe('HELD');
    expect(pipeline.shopify.cards).toHaveLength(0);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });

  it('pays a held referral exactly once after its release time, across a crash and duplicate releases', async () => {
    // Prepare: a short hold, and a crash right after the first card of the release
    let crashed = false;
    pipeline = await Pipeline.start({
      env: { REWARD_HOLD: '2s' },
      checkpoint: (step) => {
        if (step === 'card:referrer' && !crashed) {
          crashed = true;
          throw new Error('simulated crash');
        }
      },
    });
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();
    await untilReleaseTime(await held(uuid));

    // Act: the releaser runs twice before the worker gets to it, and a duplicate webhook arrives
    await releaseOnce(pipeline);
    await releaseOnce(pipeline);
    await pipeline.post(body);
    await pipeline.drain();
    const after = await releaseOnce(pipeline);

    // Assess
    const record = await held(uuid);
    expect(record?.status).toBe('COMPLETED');
    expect(record?.lifecycleQueue).toBeUndefined();
    expect(record?.releasedAt).toBeDefined();
    expect(crashed).toBe(true);
    expect(
      pipeline
        .cardsFor(uuid)
        .map((card) => card.code)
        .sort(),
    ).toEqual([record!.referrerCode, record!.redeemerCode].sort());
    expect(pipeline.customerio.events).toHaveLength(1);
    expect(after.released).toBe(0);
    expect(pipeline.posthog.captures.map((c) => c.event)).toEqual([
      'referral reward held',
      'referral reward released',
      'referral reward fulfilled',
    ]);
  });

  it('lists the waiting referral in the sparse index only while it is held', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REWARD_HOLD: '1h' } });
    const { uuid, body } = referralBody();

    // Act
    await pipeline.post(body);
    await pipeline.drain();

    // Assess
    expect((await lifecycleIndex(pipeline).waiting('held')).map((r) => r.eventId)).toEqual([uuid]);
    expect(await lifecycleIndex(pipeline).waiting('held', Date.now())).toEqual([]);
  });
});
