/**
 * `npm run ops -- <command>`: what the person on call runs (docs/OPERATIONS.md).
 * Thin on purpose: parse, open the target, call one function from ops/, print.
 */
import { parseArgs, USAGE, UsageError, type OpsArgs } from './args';
import { formatDeadLetters, listDeadLetters } from './dlq-list';
import { formatMigrate, migrateLedger } from './migrate';
import { formatReconcile, reconcileTarget, stageReconcilerEnv } from './reconcile';
import { formatRedrive, redrive } from './redrive';
import { setOnly } from './stage-params';
import { formatStatus, referralStatus } from './status';
import { captureNote, decide, formatDecision, formatReviewList, formatRevoke, listReview, opsSettings, revoke } from './review';
import { openAwsTarget, openLocalTarget, TargetError, type Target } from './target';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export type OpenTarget = (args: OpsArgs) => Promise<Target>;

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
};

const defaultOpenTarget: OpenTarget = async (args) => (args.local ? openLocalTarget() : openAwsTarget(args.stage, args.region));

/** Runs one command; resolves to the exit code (0 done, 1 failed, 2 wrong usage). */
export async function main(argv: readonly string[], io: CliIo = processIo, openTarget: OpenTarget = defaultOpenTarget): Promise<number> {
  let args: OpsArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`error: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (args.command === 'help') {
    io.stdout(USAGE);
    return 0;
  }

  const print = (json: unknown, text: string): void => io.stdout(args.json ? JSON.stringify(json, null, 2) : text);
  let target: Target | undefined;
  try {
    target = await openTarget(args);
    if (!args.json) io.stderr(`target: ${target.description}`);
    switch (args.command) {
      case 'status': {
        const report = await referralStatus(target, args.eventId!);
        print(report, formatStatus(report));
        return 0;
      }
      case 'dlq list': {
        const listing = await listDeadLetters(target, { max: args.max });
        print(listing, formatDeadLetters(listing));
        return 0;
      }
      case 'redrive': {
        const result = await redrive(target, {
          method: args.method,
          wait: args.wait,
          max: args.max,
          onProgress: args.json
            ? undefined
            : (progress) =>
                io.stderr(`  … ${progress.status} ${progress.moved}${progress.toMove !== undefined ? ` of ${progress.toMove}` : ''} moved`),
        });
        print(result, formatRedrive(result));
        return result.status === 'FAILED' || result.status === 'CANCELLED' ? 1 : 0;
      }
      case 'review list': {
        // The project the shared-signal guard asked, for links to both persons (no secret needed).
        const env = opsSettings(target, args.local ? undefined : args.stage).env;
        const projectId = env.POSTHOG_PROJECT_ID?.trim();
        const items = await listReview(
          target,
          projectId ? { appHost: env.POSTHOG_APP_HOST?.trim() || 'https://us.posthog.com', projectId } : undefined,
        );
        print(items, formatReviewList(items));
        return 0;
      }
      case 'review approve':
      case 'review reject': {
        const settings = opsSettings(target, args.local ? undefined : args.stage);
        const outcome = await decide(
          target,
          settings,
          args.command === 'review approve' ? 'approve' : 'reject',
          args.eventId!,
          args.reason,
        );
        print(outcome, formatDecision(outcome));
        const note = args.command === 'review reject' ? captureNote(settings.env) : undefined;
        if (note && !args.json) io.stderr(note);
        return 0;
      }
      case 'revoke': {
        const { outcome, env } = await revoke(
          target,
          opsSettings(target, args.local ? undefined : args.stage),
          args.eventId!,
          args.reason!,
        );
        print(outcome, formatRevoke(outcome));
        const note = captureNote(env);
        if (note && !args.json) io.stderr(note);
        return 0;
      }
      case 'reconcile': {
        const env = args.local
          ? { ...(target.reconcilerEnv ?? {}), ...setOnly(process.env) }
          : await stageReconcilerEnv(args.stage, args.region, process.env, target.secrets);
        const report = await reconcileTarget(target, env, args, { progress: args.json ? undefined : (line) => io.stderr(line) });
        print(report, formatReconcile(report));
        return 0;
      }
      case 'migrate': {
        const report = await migrateLedger(target.ddb, target.tableName, {
          dryRun: args.dryRun,
          onProgress: args.json ? undefined : (line) => io.stderr(line),
        });
        print(report, formatMigrate(report));
        return report.leftForNextRun > 0 || report.refused.length > 0 ? 1 : 0;
      }
    }
    throw new Error(`unhandled command ${String(args.command)}`);
  } catch (error) {
    const name = (error as Error)?.name ?? 'Error';
    const message = (error as Error)?.message ?? String(error);
    if (args.json) io.stdout(JSON.stringify({ error: { name, message } }, null, 2));
    else io.stderr(`error: ${error instanceof TargetError ? message : `${name}: ${message}`}${hint(name)}`);
    return 1;
  } finally {
    target?.close();
  }
}

/** One line on the AWS errors an operator most often meets first. */
function hint(name: string): string {
  if (/CredentialsProviderError|ExpiredToken|UnrecognizedClient|InvalidClientTokenId/.test(name)) {
    return '\n(no valid AWS credentials: `aws sso login` or set AWS_PROFILE for the account the stage is deployed in)';
  }
  if (/AccessDenied/.test(name)) return '\n(your AWS role lacks a permission; docs/OPERATIONS.md lists the ones ops needs)';
  return '';
}

if (require.main === module) {
  // The SDK's "Node 22 will be required from 2027" notice would only bury the answer.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`error: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
