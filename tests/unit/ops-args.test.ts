import { parseArgs, UsageError } from '../../ops/args';
import { thrown } from '../support/failure';

describe('ops arguments', () => {
  it('reads a command with its event id, target and options, in any order', () => {
    // Act
    const args = parseArgs(['--json', 'review', '--stage', 'prod', 'approve', 'uuid-1', '--reason=looks fine', '--region', 'eu-west-1']);

    // Assess
    expect(args).toMatchObject({
      command: 'review approve',
      eventId: 'uuid-1',
      json: true,
      stage: 'prod',
      region: 'eu-west-1',
      reason: 'looks fine',
      local: false,
    });
  });

  it('reads migrate on a stage, with --dry-run', () => {
    // Act
    const args = parseArgs(['migrate', '--stage', 'prod', '--dry-run']);

    // Assess
    expect(args).toMatchObject({ command: 'migrate', stage: 'prod', dryRun: true, local: false });
  });

  it('refuses an argument to migrate, which reads the whole ledger', () => {
    // Act
    const error = thrown(() => parseArgs(['migrate', 'uuid-1']), UsageError);

    // Assess
    expect(error.message).toContain('migrate takes no argument');
  });

  it('defaults the target to the dev stage in us-east-1, redrive to auto and waiting', () => {
    // Act
    const args = parseArgs(['redrive']);

    // Assess
    expect(args).toMatchObject({
      command: 'redrive',
      stage: 'dev',
      region: 'us-east-1',
      method: 'auto',
      wait: true,
      dryRun: false,
      force: false,
    });
  });

  it('reads --max, --method and --no-wait', () => {
    // Act
    const args = parseArgs(['redrive', '--max', '5', '--method=copy', '--no-wait', '--local']);

    // Assess
    expect(args).toMatchObject({ command: 'redrive', max: 5, method: 'copy', wait: false, local: true });
  });

  it.each([[['-h']], [['--help']], [[]], [['help']], [['status', 'uuid-1', '--help']]])('answers %j with the help', (argv) => {
    // Act
    const args = parseArgs(argv);

    // Assess
    expect(args.command).toBe('help');
  });

  it.each([
    [['status', 'uuid-1', '--frobnicate'], 'unknown option --frobnicate'],
    [['status', 'uuid-1', '--frobnicate=1'], 'unknown option --frobnicate=1'],
    [['status', 'uuid-1', '-x'], 'unknown option -x'],
    [['status', 'uuid-1', '--json=yes'], '--json takes no value'],
    [['status', 'uuid-1', '--stage'], '--stage needs a value'],
    [['status', 'uuid-1', '--stage='], '--stage needs a value'],
    [['status', 'uuid-1', '--stage', '--json'], '--stage needs a value'],
    [['dlq', 'list', '--max', '0'], '--max must be a whole number ≥ 1'],
    [['redrive', '--method', 'teleport'], '--method must be one of auto, move-task, copy'],
    [['status', 'uuid-1', '--local', '--stage', 'prod'], '--local and --stage/--region are exclusive'],
    [['status'], "status needs the referral's event id"],
    [['review', 'reject', 'uuid-1'], 'review reject needs --reason TEXT'],
    [['revoke', 'uuid-1'], 'revoke needs --reason TEXT'],
    [['launch'], 'unknown command launch'],
  ])('refuses %j: %s', (argv, message) => {
    // Act
    const error = thrown(() => parseArgs(argv), UsageError);

    // Assess
    expect(error.message).toContain(message);
  });
});
