import type { ChangeMessageVisibilityCommandInput } from '@aws-sdk/client-sqs';
import type { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * When a failed record comes back, through the real pipeline (fauxqs, dynalite, the fake shop)
 * with the deployed queue's 360 s visibility timeout: the worker sets the wait by cause.
 */
describe('redelivery timed by cause', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  it("pays a referral that waited on another referral's undecided claim seconds after that referral decides, not after the queue's 360 s", async () => {
    // Prepare: the capped referrer's one slot is used; A (capped) claims the new redeemer and is
    // held just before it writes its decision, so B, for the same redeemer, meets A's claim undecided.
    let holdDecisionOf: string | undefined;
    let reachDecision!: () => void;
    const decisionReached = new Promise<void>((resolve) => (reachDecision = resolve));
    let allowDecision!: () => void;
    const decisionAllowed = new Promise<void>((resolve) => (allowDecision = resolve));
    pipeline = await Pipeline.start({
      env: { MAX_REWARDS_PER_REFERRER: '1' },
      visibilityTimeoutSeconds: 360,
      wrapLedger: (ledger) =>
        Object.assign(Object.create(ledger) as Ledger, {
          write: async (...args: Parameters<Ledger['write']>) => {
            const [eventId, , change] = args;
            if (change.step === 'decide' && eventId === holdDecisionOf) {
              reachDecision();
              await decisionAllowed;
            }
            return ledger.write(...args);
          },
        }),
    });
    const visibilitySet: ChangeMessageVisibilityCommandInput[] = [];
    pipeline.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ChangeMessageVisibilityCommand') visibilitySet.push(args.input as ChangeMessageVisibilityCommandInput);
        return next(args);
      },
      { step: 'initialize', name: 'observeVisibility' },
    );
    await pipeline.post(referralBody({ referrer: 'capped@example.com' }).body);
    await pipeline.drain();
    const capped = referralBody({ referrer: 'capped@example.com', redeemer: 'newcomer@example.com' });
    const waiting = referralBody({ referrer: 'eligible@example.com', redeemer: 'newcomer@example.com' });
    holdDecisionOf = capped.uuid;
    await pipeline.post(capped.body);
    const cappedRun = pipeline.poller.pollOnce(0);
    await decisionReached;
    await pipeline.post(waiting.body);
    await pipeline.poller.pollOnce(0);
    const waitedFirst = await pipeline.record(waiting.uuid);

    // Act: A decides (refused for the cap, its claim given back); B comes back on its own
    allowDecision();
    await cappedRun;
    await pipeline.drain(30_000);

    // Assess
    expect(waitedFirst?.decision).toBeUndefined();
    expect(visibilitySet).toHaveLength(1);
    expect(visibilitySet[0]!.VisibilityTimeout).toBeGreaterThanOrEqual(2);
    expect(visibilitySet[0]!.VisibilityTimeout).toBeLessThanOrEqual(10);
    expect(await pipeline.record(capped.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'referrer_cap_reached' });
    expect(await pipeline.record(waiting.uuid)).toMatchObject({ status: 'COMPLETED', attempts: 2 });
    expect(pipeline.cardsFor(waiting.uuid)).toHaveLength(2);
  }, 60_000);
});
