import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { queueSender } from '../../lib/adapters/sqs/queue';
import { Ledger, type LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { approveReferral, type ReviewDeps } from '../../lib/domain/lifecycle/review';
import { revokeReferral } from '../../lib/domain/lifecycle/revoke';
import { lifecycleLedger, releaseOnce } from '../support/lifecycle';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * An operator's approval through the real pipeline, against what else can happen to the referral:
 * a revoke racing it or following it, a count that fails, and REWARD_HOLD.
 */
describe('review approve', () => {
  let pipeline: Pipeline;

  afterEach(async () => {
    await pipeline?.stop();
  });

  const recordOf = async (uuid: string) => (await pipeline.record(uuid)) as LifecycleRecord | undefined;
  const reviewDeps = (ledger: Ledger = lifecycleLedger(pipeline)): ReviewDeps => ({
    ledger,
    enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl),
  });
  const revokeDeps = () => ({ ledger: lifecycleLedger(pipeline), rewardAmount: '25.00' });
  const dayOf = (record: LifecycleRecord | undefined) => `day#${record!.createdAt.slice(0, 10)}`;

  /** Budget 100.00 (two referrals of 2 × 25.00) and one referral per referrer a day: the referrer's first is paid, the second waits in review. */
  async function paidThenInReview(env: Record<string, string> = {}, wrapDdb?: (ddb: DynamoDBDocumentClient) => DynamoDBDocumentClient) {
    pipeline = await Pipeline.start({ env: { PROGRAM_DAILY_BUDGET: '100', REVIEW_REFERRER_VELOCITY: '1/24h', ...env }, wrapDdb });
    const first = referralBody({ referrer: 'busy@example.com' });
    const second = referralBody({ referrer: 'busy@example.com' });
    await pipeline.post(first.body);
    await pipeline.drain();
    await pipeline.post(second.body);
    await pipeline.drain();
    return { first, second };
  }

  /** A clean referral by someone else, run through: what the day's budget has room for decides its fate. */
  async function nextCleanReferral() {
    const next = referralBody();
    await pipeline.post(next.body);
    await pipeline.drain();
    return recordOf(next.uuid);
  }

  it('leaves no budget counted for a referral approved, revoked and approved again, and refuses the repeat', async () => {
    // Prepare
    const { second } = await paidThenInReview();
    expect((await recordOf(second.uuid))?.reviewReasons).toEqual(['velocity']);

    // Act: approve, revoke before the worker takes it up, approve again (the docs call it safe to repeat)
    await approveReferral(reviewDeps(), second.uuid);
    const revoked = await revokeReferral(revokeDeps(), second.uuid, 'fraud');
    const again = approveReferral(reviewDeps(), second.uuid);
    await expect(again).rejects.toThrow(/not in review \(status REVOKED/);
    await pipeline.drain();
    const next = await nextCleanReferral();

    // Assess
    expect(revoked).toMatchObject({ result: 'cancelled', beforePayout: true });
    expect(await recordOf(second.uuid)).toMatchObject({ status: 'REVOKED' });
    expect(pipeline.cardsFor(second.uuid)).toHaveLength(0);
    expect(next).toMatchObject({ status: 'COMPLETED' });
    expect(await lifecycleLedger(pipeline).spent(dayOf(next))).toEqual({ cents: 10_000, referrals: 2 });
  });

  it('tells the operator, and counts nothing, when a revoke lands between the approval and its follow-ups', async () => {
    // Prepare: the revoke runs right after the approval's write, before approve goes on
    const { second } = await paidThenInReview();
    const real = lifecycleLedger(pipeline);
    const racing = Object.assign(Object.create(real) as Ledger, {
      move: async (...args: Parameters<Ledger['move']>) => {
        const moved = await real.move(...args);
        if (args[2].step === 'approve') await revokeReferral(revokeDeps(), args[0], 'fraud');
        return moved;
      },
    });

    // Act
    const outcome = await approveReferral(reviewDeps(racing), second.uuid);
    await pipeline.drain();
    const next = await nextCleanReferral();

    // Assess
    expect(outcome).toMatchObject({ result: 'revoked', status: 'REVOKED' });
    expect(pipeline.cardsFor(second.uuid)).toHaveLength(0);
    expect(next).toMatchObject({ status: 'COMPLETED' });
    expect(await lifecycleLedger(pipeline).spent(dayOf(next))).toEqual({ cents: 10_000, referrals: 2 });
  });

  it('counts an approved referral before it is paid, even when a budget write fails along the way', async () => {
    // Prepare: once armed, the first budget write of the operator's and of the worker's ledger each fail
    let armed = false;
    const failingBudgetWrite = (client: DynamoDBDocumentClient): DynamoDBDocumentClient => {
      let failed = false;
      const send = client.send.bind(client) as (...args: unknown[]) => Promise<unknown>;
      return Object.assign(Object.create(client) as DynamoDBDocumentClient, {
        send: (command: { input?: { Key?: { pk?: string }; UpdateExpression?: string } }, ...rest: unknown[]) => {
          if (armed && !failed && String(command.input?.Key?.pk ?? '').startsWith('budget#') && command.input?.UpdateExpression) {
            failed = true;
            return Promise.reject(Object.assign(new Error('simulated: the budget write timed out'), { name: 'TimeoutError' }));
          }
          return send(command, ...rest);
        },
      });
    };
    const { second } = await paidThenInReview({}, failingBudgetWrite);
    const operator = new Ledger(failingBudgetWrite(pipeline.ddb), pipeline.resources.tableName);
    armed = true;

    // Act: approve (its budget write, if it makes one, fails), then the releaser and the worker run
    await approveReferral(reviewDeps(operator), second.uuid).catch(() => undefined);
    await releaseOnce(pipeline);
    await pipeline.drain();
    const next = await nextCleanReferral();

    // Assess: paid once and counted once, so the day's budget has no room for the next referral
    expect(await recordOf(second.uuid)).toMatchObject({ status: 'COMPLETED', reviewDecision: 'approved' });
    expect(pipeline.cardsFor(second.uuid)).toHaveLength(2);
    expect(next).toMatchObject({ status: 'REVIEW', reviewReasons: ['budget'] });
    expect(await lifecycleLedger(pipeline).spent(dayOf(next))).toEqual({ cents: 10_000, referrals: 2 });
  });

  it('never pays an approved referral before its acceptance plus REWARD_HOLD', async () => {
    // Prepare
    const { first, second } = await paidThenInReview({ REWARD_HOLD: '1h', PROGRAM_DAILY_BUDGET: '1000' });

    // Act
    await approveReferral(reviewDeps(), second.uuid);
    await pipeline.drain();
    await releaseOnce(pipeline);
    await pipeline.drain();

    // Assess: both wait for the same hold, neither is paid
    const clean = await recordOf(first.uuid);
    const approved = await recordOf(second.uuid);
    expect(clean).toMatchObject({ status: 'HELD' });
    expect(approved).toMatchObject({ status: 'HELD', reviewDecision: 'approved' });
    expect(Number(approved?.releaseAt)).toBe(Date.parse(approved!.createdAt) + 3_600_000);
    expect(pipeline.shopify.cards).toHaveLength(0);
  });
});
