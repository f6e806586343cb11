/** The command line of ops/posthog-insights.ts: parse, run, print; exit 0 done, 1 failed, 2 usage. */
import type { Fetch } from '../../lib/infra/http';
import { parseDuration } from '../../lib/infra/duration';
import { UsageError } from '../args';
import type { CliIo } from '../cli';
import { DEFAULT_DASHBOARD_NAME, DEFAULT_DATE_FROM, DEFAULT_EVENTS, type ProgramEvents, type Qualification } from './definitions';
import { ensureReferralInsights, normaliseHost, type InsightsOptions } from './ensure';

export const USAGE = `usage: npx tsx ops/posthog-insights.ts --project <id> [options]

Creates or updates the referral program insights in PostHog (idempotent: safe to re-run).

  --host <url>            PostHog app host (default https://us.posthog.com; EU https://eu.posthog.com)
  --project <id>          numeric project id (Project settings)
  --dashboard [name]      also put them on a dashboard (default name "${DEFAULT_DASHBOARD_NAME}")
  --skip-existing         leave insights that already exist as they are
  --dry-run               look up only; change nothing
  --date-from <range>     default ${DEFAULT_DATE_FROM}
  --redeemed-event <name> default $REFERRAL_EVENT or "${DEFAULT_EVENTS.redeemed}"
  --fulfilled-event <name>, --rejected-event <name>
  --qualify-within <duration>
                          pay on value: also the redeemed → qualified → rewarded funnel and the
                          time to qualify, this as their window (default: with $QUALIFY_EVENT set,
                          $QUALIFY_WITHIN or 30d; without it, not created)
env: POSTHOG_PERSONAL_API_KEY (required; scopes insight:write, + dashboard:write for --dashboard)
exit: 0 done, 1 PostHog refused or failed, 2 usage`;

/** The ops CLI's output (ops/cli.ts), plus the fetch this command talks to PostHog with. */
export type InsightsCliIo = CliIo & { fetch: Fetch };

/** Parses argv, runs, prints; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function runCli(argv: string[], env: Record<string, string | undefined>, io: InsightsCliIo): Promise<number> {
  let options: Omit<InsightsOptions, 'fetch' | 'log' | 'apiKey'>;
  try {
    const parsed = parseArgs(argv, env);
    if (parsed === 'help') {
      io.stdout(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    io.stderr(`✖ ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const apiKey = env.POSTHOG_PERSONAL_API_KEY ?? '';
  try {
    io.stdout(`PostHog project ${options.projectId} at ${options.host}${options.dryRun ? ' (dry run)' : ''}`);
    const report = await ensureReferralInsights({ ...options, apiKey, fetch: io.fetch, log: (line) => io.stdout(`  ${line}`) });
    const created = report.insights.filter((i) => i.action === 'created').length;
    const updated = report.insights.filter((i) => i.action === 'updated').length;
    io.stdout(`done: ${created} created, ${updated} updated, ${report.insights.length - created - updated} left as they were`);
    return 0;
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    io.stderr(`✖ ${apiKey ? message.split(apiKey).join('***') : message}`);
    return error instanceof UsageError ? 2 : 1;
  }
}

function parseArgs(argv: string[], env: Record<string, string | undefined>): Omit<InsightsOptions, 'fetch' | 'log' | 'apiKey'> | 'help' {
  let host = 'https://us.posthog.com';
  let projectId: string | undefined;
  let dashboard: string | undefined;
  let skipExisting = false;
  let dryRun = false;
  let dateFrom: string | undefined;
  const events: Partial<ProgramEvents> = { redeemed: env.REFERRAL_EVENT };
  // The stage's own settings when the shell has them: QUALIFY_WITHIN means something only with QUALIFY_EVENT.
  let qualifyWithin = env.QUALIFY_EVENT?.trim() ? env.QUALIFY_WITHIN?.trim() || '30d' : undefined;
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const take = (): string => inline ?? value(i++, flag);
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--host':
        host = take();
        break;
      case '--project':
        projectId = take();
        break;
      case '--dashboard':
        if (inline !== undefined) dashboard = inline;
        else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) dashboard = argv[++i];
        else dashboard = DEFAULT_DASHBOARD_NAME;
        break;
      case '--skip-existing':
        skipExisting = true;
        break;
      case '--dry-run':
        dryRun = true;
        break;
      case '--date-from':
        dateFrom = take();
        break;
      case '--redeemed-event':
        events.redeemed = take();
        break;
      case '--fulfilled-event':
        events.fulfilled = take();
        break;
      case '--rejected-event':
        events.rejected = take();
        break;
      case '--qualify-within':
        qualifyWithin = take();
        break;
      default:
        throw new UsageError(`unknown argument ${arg}`);
    }
  }
  if (!projectId) throw new UsageError('--project <id> is required');
  let qualification: Qualification | undefined;
  if (qualifyWithin !== undefined) {
    const withinMs = parseDuration(qualifyWithin);
    if (!withinMs) throw new UsageError(`--qualify-within must be a duration like 30d or 36h, not "${qualifyWithin}"`);
    qualification = { withinMs };
  }
  // Checked here so a bad host is a usage error before anything else happens.
  return { host: normaliseHost(host), projectId, dashboard, skipExisting, dryRun, dateFrom, events, qualification };
}
