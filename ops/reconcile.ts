/**
 * `reconcile`: one reconciler run on demand (a backfill after an outage, or a look with
 * --dry-run). The same code as the scheduled Lambda (lib/domain/reconcile.ts): PostHog's Query API →
 * ledger → the queue, in ingest's message format; the worker pays each uuid once, so a run that
 * overlaps the schedule or the webhook is harmless.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { loadReconcilerConfig, type Env } from '../lib/infra/config';
import { formatDuration } from '../lib/infra/duration';
import type { Fetch } from '../lib/infra/http';
import { reconcile, slidingWindow, type ReconcileReport } from '../lib/domain/reconcile';
import { reconcileDeps, reconcileOptions } from '../lib/infra/wiring';
import { loadEnv, RECONCILER_SECRET_KEYS, SecretsManagerSource, type SecretSource } from '../lib/infra/secrets';
import { stageEnv } from './stage-params';
import { TargetError, type Target } from './target';

export interface ReconcileRun {
  since?: number;
  until?: number;
  dryRun: boolean;
  force: boolean;
}

export interface ReconcileRunOptions {
  now?: number;
  fetch?: Fetch;
  /** One line per finding, as it is found (stderr in the CLI). */
  progress?: (line: string) => void;
}

/** Runs the reconciler against `target` with the settings in `env`. Refuses a window before RECONCILE_FROM without --force. */
export async function reconcileTarget(
  target: Target,
  env: Env,
  run: ReconcileRun,
  options: ReconcileRunOptions = {},
): Promise<ReconcileReport> {
  const config = loadReconcilerConfig({ ...env, TABLE_NAME: target.tableName, QUEUE_URL: target.queueUrl });
  if (!config.enabled) {
    throw new TargetError(
      'the reconciler is not configured: set POSTHOG_PROJECT_ID, POSTHOG_PERSONAL_API_KEY and RECONCILE_FROM ' +
        "(or the stage's params in serverless.yml and its reconciler secret)",
    );
  }
  const now = options.now ?? Date.now();
  const scheduled = slidingWindow(config, now);
  const window = { since: run.since ?? scheduled.since, until: run.until ?? scheduled.until };
  if (window.since < config.from && !run.force) {
    throw new TargetError(
      `--since ${new Date(window.since).toISOString()} is before RECONCILE_FROM ${new Date(config.from).toISOString()}: ` +
        'referrals from before go-live may have been paid by the old zap. Add --force only if you are sure they were not.',
    );
  }
  const say = options.progress ?? (() => undefined);
  const log = {
    info: () => undefined,
    warn: (message: string, extra?: Record<string, unknown>) => say(`  ${message}: ${JSON.stringify(extra)}`),
  };
  const deps = reconcileDeps(config, { sqs: target.sqs, ddb: target.ddb, log, fetch: options.fetch });
  return reconcile(deps, reconcileOptions(config, window, { dryRun: run.dryRun }));
}

/**
 * The reconciler's settings for a deployed stage: the stage's params in serverless.yml (over
 * `default`), with what the shell sets on top except where the key is sent (POSTHOG_APP_HOST is
 * the stage's, https only: ops/stage-params.ts), then the key from the stage's reconciler secret
 * (`referral-rewards/<stage>/reconciler`; needs secretsmanager:GetSecretValue) unless the shell
 * has one.
 */
export async function stageReconcilerEnv(stage: string, region: string, env: Env = process.env, source?: SecretSource): Promise<Env> {
  const merged = stageEnv(stage, env);
  if (merged.POSTHOG_PERSONAL_API_KEY) return merged;
  const secrets = source ?? new SecretsManagerSource(new SecretsManagerClient({ region }));
  return loadEnv({ ...merged, SECRET_ID: `referral-rewards/${stage}/reconciler` }, secrets, RECONCILER_SECRET_KEYS);
}

export function formatReconcile(report: ReconcileReport): string {
  const lines = [
    `window       ${report.since} .. ${report.until} (${formatDuration(Date.parse(report.until) - Date.parse(report.since))})`,
    `seen         ${report.seen} referral event(s) in PostHog`,
    `in ledger    ${report.known} (paid, in progress, failed or rejected: nothing to do)`,
    `missing      ${report.missing.length}${report.dryRun ? ' (dry run: NOT queued)' : `, queued ${report.queued}`}`,
  ];
  for (const finding of report.missing)
    lines.push(`  ${finding.eventId}  ${finding.occurredAt ?? ''}  ${finding.referrer} → ${finding.redeemer}`);
  lines.push(
    `unreconcilable ${report.unreconcilable.length}${report.unreconcilable.length ? ' (the webhook would refuse these too; fix the event or pay by hand)' : ''}`,
  );
  for (const entry of report.unreconcilable) lines.push(`  ${entry.eventId ?? '(no uuid)'}  ${entry.code}: ${entry.reason}`);
  const caught = report.personEvents;
  if (caught) {
    lines.push(
      `catch-up     ${caught.seen} qualifying/refund event(s) of referrals' redeemers; ${caught.known} handled, ${caught.missing} not` +
        (report.dryRun ? ' (dry run: NOT queued)' : `, queued ${caught.queued}`) +
        (caught.unreconcilable ? `; ${caught.unreconcilable} unreconcilable (see the WARN lines)` : ''),
    );
  }
  return lines.join('\n');
}
