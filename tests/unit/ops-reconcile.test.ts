import { parseArgs, UsageError } from '../../ops/args';
import { formatReconcile, reconcileTarget, stageReconcilerEnv } from '../../ops/reconcile';
import { TargetError, type Target } from '../../ops/target';
import { failure, thrown } from '../support/failure';

const ENV = { POSTHOG_PROJECT_ID: '1', POSTHOG_PERSONAL_API_KEY: 'phx_key', RECONCILE_FROM: '2026-07-01T00:00:00Z' };
/** A target nothing may be sent to: every check here happens before PostHog or AWS is asked. */
const TARGET = {
  description: 'test',
  emulated: true,
  queueUrl: 'http://queue',
  deadLetterQueueUrl: 'http://dlq',
  tableName: 'ledger',
  sqs: { send: () => Promise.reject(new Error('no SQS in this test')) },
  ddb: { send: () => Promise.reject(new Error('no DynamoDB in this test')) },
  close: () => undefined,
} as unknown as Target;

describe('ops reconcile: arguments', () => {
  it('reads the window, --dry-run and --force', () => {
    // Act
    const args = parseArgs([
      'reconcile',
      '--since',
      '2026-07-01T00:00:00Z',
      '--until=2026-07-02T00:00:00Z',
      '--dry-run',
      '--force',
      '--local',
    ]);

    // Assess
    expect(args).toMatchObject({
      command: 'reconcile',
      since: Date.parse('2026-07-01T00:00:00Z'),
      until: Date.parse('2026-07-02T00:00:00Z'),
      dryRun: true,
      force: true,
      local: true,
    });
  });

  it.each([
    [['reconcile', '--since', 'last week'], '--since must be an ISO timestamp'],
    [['reconcile', '--since', '2026-07-02T00:00:00Z', '--until', '2026-07-01T00:00:00Z'], '--until must be after --since'],
    [['reconcile', 'now'], 'reconcile takes no argument'],
  ])('refuses %j', (argv, message) => {
    // Act
    const error = thrown(() => parseArgs(argv), UsageError);

    // Assess
    expect(error.message).toContain(message);
  });
});

describe('ops reconcile: the window', () => {
  it('refuses --since before RECONCILE_FROM without --force, before asking PostHog', async () => {
    // Act
    const error = await failure(reconcileTarget(TARGET, ENV, { since: Date.parse('2026-06-01T00:00:00Z'), dryRun: true, force: false }));

    // Assess
    expect(error).toBeInstanceOf(TargetError);
    expect(error.message).toContain('before RECONCILE_FROM');
    expect(error.message).toContain('--force');
  });

  it('says which settings are missing when the reconciler is not configured', async () => {
    // Act
    const error = await failure(reconcileTarget(TARGET, {}, { dryRun: true, force: false }));

    // Assess
    expect(error.message).toContain('POSTHOG_PROJECT_ID, POSTHOG_PERSONAL_API_KEY and RECONCILE_FROM');
  });
});

describe('formatReconcile', () => {
  it('says a dry run queued nothing and lists each finding by uuid', () => {
    // Act
    const text = formatReconcile({
      since: '2026-07-01T00:00:00.000Z',
      until: '2026-07-02T00:00:00.000Z',
      dryRun: true,
      seen: 2,
      known: 1,
      missing: [{ eventId: 'e1', referrer: 'r***@example.com', redeemer: 'x***@example.com' }],
      queued: 0,
      unreconcilable: [],
    });

    // Assess
    expect(text).toContain('missing      1 (dry run: NOT queued)');
    expect(text).toContain('e1');
    expect(text).toContain('(1d)');
  });
});

describe('formatReconcile: the catch-up', () => {
  it('prints the catch-up counts when it ran, and nothing about it when it did not', () => {
    // Prepare
    const base = {
      since: '2026-07-01T00:00:00.000Z',
      until: '2026-07-02T00:00:00.000Z',
      dryRun: false,
      seen: 0,
      known: 0,
      missing: [],
      queued: 0,
      unreconcilable: [],
    };

    // Act
    const ran = formatReconcile({ ...base, personEvents: { seen: 3, known: 1, missing: 2, queued: 2, unreconcilable: 0 } });
    const off = formatReconcile(base);

    // Assess
    expect(ran).toContain("catch-up     3 qualifying/refund event(s) of referrals' redeemers; 1 handled, 2 not, queued 2");
    expect(off).not.toContain('catch-up');
  });
});

describe("ops reconcile: a stage's settings", () => {
  it("takes the stage's params from serverless.yml and the key from its reconciler secret", async () => {
    // Prepare
    const source = { get: jest.fn(async () => ({ POSTHOG_PERSONAL_API_KEY: 'phx_from_secret' })) };

    // Act
    const env = await stageReconcilerEnv('ci', 'us-east-1', { RECONCILE_FROM: '2026-07-01T00:00:00Z' }, source);

    // Assess
    expect(source.get).toHaveBeenCalledWith('referral-rewards/ci/reconciler', expect.anything());
    expect(env).toMatchObject({
      POSTHOG_APP_HOST: 'https://us.posthog.com',
      RECONCILE_LOOKBACK: '72h',
      RECONCILE_FROM: '2026-07-01T00:00:00Z',
      POSTHOG_PERSONAL_API_KEY: 'phx_from_secret',
    });
  });
});
