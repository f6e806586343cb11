/** `npm run ops -- <command> [options]`: the command line, parsed and checked; nothing else. */
import { parseArgs as parseArgv, type ParseArgsConfig } from 'node:util';
import type { RedriveMethod } from './redrive';

export type Command =
  'status' | 'dlq list' | 'redrive' | 'review list' | 'review approve' | 'review reject' | 'revoke' | 'reconcile' | 'migrate' | 'help';

export interface OpsArgs {
  command: Command;
  eventId?: string;
  local: boolean;
  json: boolean;
  stage: string;
  region: string;
  /** dlq list: most messages to show; redrive (copy): most messages to move. */
  max?: number;
  method: RedriveMethod;
  wait: boolean;
  /** review approve/reject, revoke: why (kept on the record). */
  reason?: string;
  /** reconcile: the window (ISO timestamps, epoch ms here); absent = the scheduled sliding window. */
  since?: number;
  until?: number;
  dryRun: boolean;
  /** reconcile: allow --since before RECONCILE_FROM (the go-live moment). */
  force: boolean;
}

/** Wrong usage: exit code 2 with the usage text. */
export class UsageError extends Error {}

export const USAGE = `Usage: npm run ops -- <command> [options]

Commands:
  status <eventId>   what happened to one referral (the PostHog event uuid): status, steps
                     done and when, attempts, last error; emails and codes masked
  dlq list           the referrals in the dead-letter queue, with failure reason and time
                     (read without removing them)
  redrive            move every dead-lettered message back to the queue for another try
                     (safe to repeat: nothing already paid is paid again)
  review list        referrals waiting in review (budget, velocity, disposable_email), oldest first
  review approve <eventId> [--reason TEXT]
                     pay it (once, through the queue and the worker); counted in its budget
  review reject <eventId> --reason TEXT
                     refuse it for good (REJECTED reviewer_rejected); nothing is issued
  revoke <eventId> --reason TEXT
                     void it: HELD/REVIEW are cancelled before anything is issued; a paid one
                     has both rewards deactivated in Shopify (safe to repeat; resumes)
  reconcile          ask PostHog for the referral events of a window, list those the ledger
                     has never seen, and queue them (safe to repeat: the worker pays a uuid once).
                     Settings: POSTHOG_PROJECT_ID, POSTHOG_PERSONAL_API_KEY, RECONCILE_FROM
                     (env; a stage's params and reconciler secret fill what env leaves unset)
  migrate            rewrite ledger items stored by earlier releases into today's shape, once,
                     before deploying a release that no longer reads them (README "Upgrading");
                     safe to repeat and to run while workers run; prints counts

Target (one of):
  --stage <name>     a deployed stage (default: dev), with --region <region> (default: us-east-1);
                     uses your usual AWS credentials (AWS_PROFILE, SSO, env)
  --local            the local stack started with \`npm start\` (reads .local/stack.json)

Options:
  --json             machine-readable output on stdout
  --max <n>          dlq list: show at most n (default 100); redrive: move at most n (copy method)
  --method <m>       redrive: auto (default) | move-task (SQS StartMessageMoveTask) | copy
                     (receive → send → delete; used automatically where move tasks are missing)
  --no-wait          redrive: start the SQS move task and return without waiting
  --since <ISO>      reconcile: window start (default: max(RECONCILE_FROM, now - RECONCILE_LOOKBACK))
  --until <ISO>      reconcile: window end (default: now - RECONCILE_MIN_AGE)
  --dry-run          reconcile: list what is missing, queue nothing; migrate: count, write nothing
  --force            reconcile: allow --since before RECONCILE_FROM (may pay what the old zap paid)
  -h, --help         this text

Exit codes: 0 done, 1 failed, 2 wrong usage.
Examples:
  npm run ops -- status 0190b6c2-6f1e-7c3a-9d7e-2f0c1b9a8e41 --stage prod
  npm run ops -- dlq list --stage prod
  npm run ops -- redrive --stage prod
  npm run ops -- dlq list --local --json
  npm run ops -- reconcile --stage prod --since 2026-07-01T00:00:00Z --dry-run
  npm run ops -- migrate --stage prod --dry-run`;

const METHODS: readonly RedriveMethod[] = ['auto', 'move-task', 'copy'];

/** Every option the commands take; anything else is refused by name. */
const OPTIONS = {
  stage: { type: 'string' },
  region: { type: 'string' },
  max: { type: 'string' },
  method: { type: 'string' },
  reason: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  local: { type: 'boolean' },
  json: { type: 'boolean' },
  'no-wait': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

type OptionName = keyof typeof OPTIONS;

const isOption = (name: string): name is OptionName => Object.hasOwn(OPTIONS, name);

/**
 * The argv as node:util's parseArgs reads it (`--name value`, `--name=value`, `-h`), then checked
 * here, token by token, so every refusal names the option in this CLI's words: an unknown option,
 * a flag given a value, a valued option without one (or followed by another option instead).
 */
function readArgv(argv: readonly string[]): { positional: string[]; flags: Map<OptionName, string | true> } {
  const { tokens } = parseArgv({ args: [...argv], options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const positional: string[] = [];
  const flags = new Map<OptionName, string | true>();
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positional.push(token.value);
      continue;
    }
    // A bare `--` ends no option list here: no command takes an argument that starts with a dash.
    if (token.kind === 'option-terminator' || !isOption(token.name)) throw new UsageError(`unknown option ${argv[token.index]}`);
    const name = token.name;
    if (OPTIONS[name].type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    const value = token.value;
    if (value === undefined || value === '' || (!token.inlineValue && value.startsWith('--')))
      throw new UsageError(`--${name} needs a value`);
    flags.set(name, value);
  }
  return { positional, flags };
}

export function parseArgs(argv: readonly string[]): OpsArgs {
  const { positional, flags } = readArgv(argv);

  const base = {
    local: flags.has('local'),
    json: flags.has('json'),
    stage: (flags.get('stage') as string | undefined) ?? 'dev',
    // serverless.yml's default region, not $AWS_REGION: the same stage the deploy went to.
    region: (flags.get('region') as string | undefined) ?? 'us-east-1',
    method: 'auto' as RedriveMethod,
    wait: !flags.has('no-wait'),
    dryRun: flags.has('dry-run'),
    force: flags.has('force'),
  };
  if (flags.has('help') || positional.length === 0 || positional[0] === 'help') return { ...base, command: 'help' };
  if (base.local && (flags.has('stage') || flags.has('region'))) throw new UsageError('--local and --stage/--region are exclusive');

  let max: number | undefined;
  if (flags.has('max')) {
    max = Number(flags.get('max'));
    if (!Number.isInteger(max) || max < 1) throw new UsageError('--max must be a whole number ≥ 1');
  }
  const method = (flags.get('method') as string | undefined) ?? 'auto';
  if (!METHODS.includes(method as RedriveMethod)) throw new UsageError(`--method must be one of ${METHODS.join(', ')}`);

  const instant = (name: 'since' | 'until'): number | undefined => {
    const text = flags.get(name) as string | undefined;
    if (text === undefined) return undefined;
    const ms = Date.parse(text);
    if (!/^\d{4}-\d{2}-\d{2}/.test(text) || !Number.isFinite(ms))
      throw new UsageError(`--${name} must be an ISO timestamp like 2026-07-01T00:00:00Z`);
    return ms;
  };
  const [first, second, ...rest] = positional;
  const args = {
    ...base,
    max,
    method: method as RedriveMethod,
    reason: flags.get('reason') as string | undefined,
    since: instant('since'),
    until: instant('until'),
  };
  switch (first) {
    case 'status':
      if (!second) throw new UsageError("status needs the referral's event id (the PostHog event uuid)");
      if (rest.length) throw new UsageError(`unexpected ${rest.join(' ')}`);
      return { ...args, command: 'status', eventId: second };
    case 'dlq':
      if (second !== 'list' || rest.length) throw new UsageError('did you mean `dlq list`?');
      return { ...args, command: 'dlq list' };
    case 'redrive':
      if (second !== undefined) throw new UsageError(`redrive takes no argument (got ${second}): it moves every dead-lettered message`);
      return { ...args, command: 'redrive' };
    case 'review': {
      if (second === 'list' && rest.length === 0) return { ...args, command: 'review list' };
      if ((second === 'approve' || second === 'reject') && rest.length === 1) {
        if (second === 'reject' && !args.reason) throw new UsageError('review reject needs --reason TEXT');
        return { ...args, command: `review ${second}`, eventId: rest[0] };
      }
      throw new UsageError('did you mean `review list`, `review approve <eventId>` or `review reject <eventId> --reason TEXT`?');
    }
    case 'revoke':
      if (!second || rest.length) throw new UsageError('revoke needs one event id: revoke <eventId> --reason TEXT');
      if (!args.reason) throw new UsageError('revoke needs --reason TEXT');
      return { ...args, command: 'revoke', eventId: second };
    case 'reconcile':
      if (second !== undefined) throw new UsageError(`reconcile takes no argument (got ${second}); the window is --since/--until`);
      if (args.since !== undefined && args.until !== undefined && args.until <= args.since)
        throw new UsageError('--until must be after --since');
      return { ...args, command: 'reconcile' };
    case 'migrate':
      if (second !== undefined) throw new UsageError(`migrate takes no argument (got ${second}): it reads the whole ledger`);
      return { ...args, command: 'migrate' };
    default:
      throw new UsageError(`unknown command ${first}`);
  }
}
