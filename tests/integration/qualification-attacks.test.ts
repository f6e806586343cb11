import { randomUUID } from 'node:crypto';
import type { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { pipelineSteps, redeemerOf } from '../support/person-events';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * Pay on value under attack, through the real pipeline (ingest, queue, worker, dynalite): what a
 * redeemer or a stranger can do with genuine signed events of their own, and what bad ordering does.
 */
const QUALIFY = 'subscription paid';
const REFUND = 'subscription refunded';
const ENV = { QUALIFY_EVENT: QUALIFY, REVOKE_EVENT: REFUND };

describe('pay on value under attack', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const start = async (env: Record<string, string> = ENV, extra: Parameters<typeof Pipeline.start>[0] = {}) => {
    pipeline = await Pipeline.start({ env, ...extra });
  };
  /** A gate a worker step waits at: `reached` once it is there, going on after `open()`. */
  const gate = () => {
    let reach!: () => void;
    let open!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { reached, open, wait: async () => (reach(), opened) };
  };
  /** Receives until the worker has handled one more message (the poller is busy with the paused one meanwhile). */
  const handleOne = async () => {
    while ((await pipeline.poller.pollOnce(0)) === 0);
  };
  const { send, recordOf, event } = pipelineSteps(() => pipeline);
  /** Starts with the referral `uuid`'s worker stopped just before it stores its wait; resolves once it is there. */
  const startPausedAtDecide = async (uuid: string, body: Record<string, unknown>) => {
    const decide = gate();
    await start(ENV, {
      wrapLedger: (ledger) =>
        Object.assign(Object.create(ledger) as Ledger, {
          write: async (...args: Parameters<Ledger['write']>) => {
            if (args[2].step === 'decide' && args[0] === uuid) await decide.wait();
            return ledger.write(...args);
          },
        }),
    });
    await send(body);
    const deciding = pipeline.poller.pollOnce(0);
    await decide.reached;
    return { decide, deciding };
  };
  /** The redeemer's event `name`, happened a minute before their referral, then the referral, both handled. */
  const earlierEventThenReferral = async (name: string) => {
    const { uuid, body } = referralBody();
    const who = redeemerOf(body);
    const earlier = event(name, who, { at: who.capturedAt - 60_000 });
    await send(earlier.body);
    await pipeline.drain();
    await send(body);
    await pipeline.drain();
    return { uuid, who, earlier };
  };
  /** `earlier` again, its uuid and signature kept, captured with the timestamp `at`, and handled. */
  const replayAt = async (earlier: ReturnType<typeof event>, at: number) => {
    const replay = structuredClone(earlier.body);
    replay.event.timestamp = new Date(at).toISOString();
    await send(replay);
    await pipeline.drain();
  };

  it("never records a revoke of a paid referral on a stranger's refund that carries the redeemer's email", async () => {
    // Prepare: refunds revoke paid referrals; the victim's referral is paid at once
    await start({ REVOKE_EVENT: REFUND, REVOKE_PAID: 'true' });
    const victim = referralBody();
    await send(victim.body);
    await pipeline.drain();
    // A stranger with a genuine refund of their own, whose PostHog person carries the victim's email ($set by anyone with the project key)
    const stranger = { personId: randomUUID(), distinctId: `stranger-${randomUUID()}`, email: victim.redeemer };

    // Act
    await send(event(REFUND, stranger).body);
    await pipeline.drain();

    // Assess
    const record = await recordOf(victim.uuid);
    expect(record?.status).toBe('COMPLETED');
    expect(record?.revokeRequestedAt).toBeUndefined();
  });

  it('never pays two referrals of one PostHog person on one qualifying event', async () => {
    // Prepare: the same PostHog person redeems under two emails; the first referral is qualified and paid
    await start();
    const first = referralBody();
    const who = redeemerOf(first.body);
    const second = referralBody();
    (second.body.event as { distinct_id: string }).distinct_id = who.distinctId;
    (second.body.person as { id: string }).id = who.personId!;
    (second.body.event as { timestamp: string }).timestamp = new Date(who.capturedAt + 1_000).toISOString();
    const qualifying = event(QUALIFY, who, { at: who.capturedAt + 2_000 });
    await send(first.body);
    await pipeline.drain();
    await send(qualifying.body);
    await pipeline.drain();
    expect((await recordOf(first.uuid))?.status).toBe('COMPLETED');

    // Act: the second referral, captured before that event, reaches the worker late
    await send(second.body);
    await pipeline.drain();

    // Assess
    expect((await recordOf(second.uuid))?.status).not.toBe('COMPLETED');
    expect(pipeline.cardsFor(second.uuid)).toHaveLength(0);
    expect(pipeline.shopify.cards).toHaveLength(2);
  });

  it('never qualifies a referral on a replay of an earlier signed event given a new timestamp', async () => {
    // Prepare: the redeemer paid once before the referral (a genuine, signed event), then redeems
    await start();
    const { uuid, who, earlier } = await earlierEventThenReferral(QUALIFY);

    // Act: the same event (uuid and signature) captured again with a timestamp after the referral
    await replayAt(earlier, who.capturedAt + 60_000);

    // Assess
    expect((await recordOf(uuid))?.status).toBe('AWAITING');
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it('never cancels a newer referral on a replay of an earlier signed refund given a new timestamp', async () => {
    // Prepare: the redeemer was refunded once before the referral, then redeems
    await start();
    const { uuid, who, earlier } = await earlierEventThenReferral(REFUND);

    // Act
    await replayAt(earlier, who.capturedAt + 60_000);

    // Assess
    expect((await recordOf(uuid))?.status).toBe('AWAITING');
  });

  it('cancels a referral on a refund that arrives while the referral is still being decided', async () => {
    // Prepare: the referral's worker stops just before it stores its wait
    const { uuid, body } = referralBody();
    const { decide, deciding } = await startPausedAtDecide(uuid, body);

    // Act: the refund is handled meanwhile; then the referral waits, and its redeemer's qualifying event comes
    await send(event(REFUND, redeemerOf(body)).body);
    await handleOne();
    decide.open();
    await deciding;
    await pipeline.drain(60_000);
    await send(event(QUALIFY, redeemerOf(body)).body);
    await pipeline.drain(60_000);

    // Assess
    expect((await recordOf(uuid))?.status).toBe('REVOKED');
    expect(pipeline.shopify.cards).toHaveLength(0);
  });

  it('with REVOKE_PAID, records the revoke of a referral refunded while it was being paid', async () => {
    // Prepare: the qualified referral's payment stops after its first card
    const payment = gate();
    await start({ ...ENV, REVOKE_PAID: 'true' }, { checkpoint: (step) => (step === 'card:referrer' ? payment.wait() : undefined) });
    const { uuid, body } = referralBody();
    await send(body);
    await pipeline.drain();
    await send(event(QUALIFY, redeemerOf(body)).body);
    const paying = pipeline.poller.pollOnce(0);
    await payment.reached;

    // Act: the refund is handled meanwhile, then the payment finishes
    await send(event(REFUND, redeemerOf(body)).body);
    await handleOne();
    payment.open();
    await paying;
    await pipeline.drain(60_000);

    // Assess
    const record = await recordOf(uuid);
    expect(record?.status).toBe('COMPLETED');
    expect(record?.revokeRequestedAt).toBeDefined();
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });

  it('pays a referral whose qualifying event is handled between its person keys being taken and its wait being stored', async () => {
    // Prepare: the referral's worker stops just before it stores its wait
    const { uuid, body } = referralBody();
    const { decide, deciding } = await startPausedAtDecide(uuid, body);

    // Act
    await send(event(QUALIFY, redeemerOf(body)).body);
    await handleOne();
    decide.open();
    await deciding;
    await pipeline.drain();

    // Assess
    expect((await recordOf(uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
  });

  it('pays a referral once when the worker dies right after the write that qualified it', async () => {
    // Prepare
    const { uuid, body } = referralBody();
    let crashed = false;
    await start(ENV, {
      wrapLedger: (ledger) =>
        Object.assign(Object.create(ledger) as Ledger, {
          move: async (...args: Parameters<Ledger['move']>) => {
            const moved = await ledger.move(...args);
            if (args[2].step === 'qualify' && !crashed) {
              crashed = true;
              throw new Error('simulated crash after the qualify write');
            }
            return moved;
          },
        }),
    });
    await send(body);
    await pipeline.drain();

    // Act
    await send(event(QUALIFY, redeemerOf(body)).body);
    await pipeline.drain(30_000);

    // Assess
    expect(crashed).toBe(true);
    expect((await recordOf(uuid))?.status).toBe('COMPLETED');
    expect(pipeline.cardsFor(uuid)).toHaveLength(2);
    expect(await pipeline.deadLetters()).toHaveLength(0);
  });
});
