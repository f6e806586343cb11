import { qualifyWhereProblem } from '../adapters/posthog-query';
import type { CatchUpOptions } from '../domain/reconcile';
import type { PostHogQueryConfig } from './config-lifecycle';
import { qualificationSettings } from './config-qualify';
import { dryRun, Settings, type Env } from './settings';

// ── The reconciler (functions/reconcile.ts, local/reconcile-loop.ts): README "Reconciler" ─────────────

/** The reconciler's settings (lib/domain/reconcile.ts); `enabled: false` when none of its switches is set. */
export type ReconcilerConfig =
  | { enabled: false }
  | {
      enabled: true;
      posthog: PostHogQueryConfig;
      /** Epoch ms (RECONCILE_FROM): nothing before the go-live moment is ever looked at. */
      from: number;
      lookbackMs: number;
      minAgeMs: number;
      intervalMs: number;
      tableName: string;
      queueUrl: string;
      referralEvent: string;
      referrerEmailProperty: string;
      redeemerEmailProperty: string;
      /**
       * DRY_RUN (the stage's, as the worker reads it): list the missing, queue nothing. A rehearsing
       * worker writes nothing to the ledger, so every referral would look missing on every run and
       * be queued (and parked in the DLQ) again each time.
       */
      dryRun: boolean;
      /**
       * The catch-up (README "Pay on value"): QUALIFY_EVENT / REVOKE_EVENT events the webhook never
       * delivered, asked for beside the referrals when either is set.
       */
      personEvents: PersonEventSettings;
    };

/** The pay-on-value settings the catch-up reads (the same names, defaults and checks as the worker's: lib/infra/config-qualify.ts). */
export type PersonEventSettings = Omit<CatchUpOptions, 'referralsFrom'>;

/**
 * Off unless POSTHOG_PROJECT_ID, POSTHOG_PERSONAL_API_KEY and RECONCILE_FROM are set; once any is
 * set, all must be (a half-configured reconciler is a failure to alarm on, not a quiet no-op).
 */
export function loadReconcilerConfig(env: Env): ReconcilerConfig {
  const switches = ['POSTHOG_PROJECT_ID', 'POSTHOG_PERSONAL_API_KEY', 'RECONCILE_FROM'] as const;
  if (switches.every((name) => !env[name]?.trim())) return { enabled: false };
  return Settings.load(env, (settings) => {
    const like = '30s, 15m, 72h or 14d';
    const fromText = settings.required('RECONCILE_FROM');
    const from = Date.parse(fromText);
    if (fromText)
      settings.expect(
        /^\d{4}-\d{2}-\d{2}T/.test(fromText) && Number.isFinite(from),
        'RECONCILE_FROM must be an ISO timestamp like 2026-07-01T00:00:00Z',
      );
    const projectId = settings.required('POSTHOG_PROJECT_ID');
    const dry = dryRun(settings);
    settings.expect(projectId === '' || /^\d+$/.test(projectId), 'POSTHOG_PROJECT_ID must be the numeric project id');
    const rules = qualificationSettings(settings);
    // QUALIFY_WHERE goes into the catch-up query: it must be one expression there too.
    const whereProblem = rules.where === undefined ? undefined : qualifyWhereProblem(rules.where);
    settings.expect(
      whereProblem === undefined,
      `QUALIFY_WHERE ${whereProblem}: it must be one HogQL boolean, as in the destination's filter`,
    );
    return {
      enabled: true,
      posthog: {
        appHost: settings.url('POSTHOG_APP_HOST'),
        projectId,
        personalApiKey: settings.required('POSTHOG_PERSONAL_API_KEY'),
      },
      from,
      lookbackMs: settings.duration('RECONCILE_LOOKBACK', like),
      minAgeMs: settings.duration('RECONCILE_MIN_AGE', like, true),
      intervalMs: settings.duration('RECONCILE_INTERVAL', like),
      tableName: settings.required('TABLE_NAME'),
      queueUrl: settings.required('QUEUE_URL'),
      referralEvent: settings.value('REFERRAL_EVENT'),
      referrerEmailProperty: settings.value('REFERRER_EMAIL_PROPERTY'),
      redeemerEmailProperty: settings.value('REDEEMER_EMAIL_PROPERTY'),
      dryRun: dry,
      personEvents: {
        qualifyEvent: rules.qualifyEvent,
        qualifyWhere: rules.where,
        qualifyWithinMs: rules.withinMs,
        revokeEvent: rules.revokeEvent,
      },
    };
  });
}
