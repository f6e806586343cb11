import { qualifyWhereProblem } from '../adapters/posthog-query';
import { qualificationSettings } from './config-qualify';
import { parseDuration } from './duration';
import { Settings, withDefault, type Env } from './settings';

// ── The reconciler (functions/reconcile.ts, local/reconcile-loop.ts): README "Reconciler" ─────────────

/** The reconciler's settings (lib/domain/reconcile.ts); `enabled: false` when none of its switches is set. */
export type ReconcilerConfig =
  | { enabled: false }
  | {
      enabled: true;
      posthog: { appHost: string; projectId: string; personalApiKey: string };
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

/** The pay-on-value settings the catch-up reads (the same names and defaults as the worker's). */
export interface PersonEventSettings {
  /** QUALIFY_EVENT; undefined = off (pay on redemption). */
  qualifyEvent?: string;
  /** QUALIFY_WHERE, checked by qualifyWhereProblem. */
  qualifyWhere?: string;
  /** QUALIFY_WITHIN: how long before the window a referral may have been redeemed and still wait. */
  qualifyWithinMs: number;
  /** REVOKE_EVENT; undefined = off. */
  revokeEvent?: string;
}

export const RECONCILER_DEFAULTS = {
  POSTHOG_APP_HOST: 'https://us.posthog.com',
  RECONCILE_LOOKBACK: '72h',
  // Long enough that the webhook path (3 attempts within seconds, then the queue) has had its turn.
  RECONCILE_MIN_AGE: '5m',
  RECONCILE_INTERVAL: '15m',
} as const;

/**
 * Off unless POSTHOG_PROJECT_ID, POSTHOG_PERSONAL_API_KEY and RECONCILE_FROM are set; once any is
 * set, all must be (a half-configured reconciler is a failure to alarm on, not a quiet no-op).
 */
export function loadReconcilerConfig(env: Env): ReconcilerConfig {
  const switches = ['POSTHOG_PROJECT_ID', 'POSTHOG_PERSONAL_API_KEY', 'RECONCILE_FROM'] as const;
  if (switches.every((name) => !env[name]?.trim())) return { enabled: false };
  const settings = new Settings();
  const setting = (name: keyof typeof RECONCILER_DEFAULTS): string => env[name]?.trim() || RECONCILER_DEFAULTS[name];
  const duration = (name: 'RECONCILE_LOOKBACK' | 'RECONCILE_MIN_AGE' | 'RECONCILE_INTERVAL', allowZero = false): number => {
    const ms = parseDuration(setting(name));
    settings.expect(ms !== undefined && (allowZero || ms > 0), `${name} must be a duration like 30s, 15m, 72h or 14d`);
    return ms ?? 0;
  };
  const fromText = settings.required('RECONCILE_FROM', env.RECONCILE_FROM);
  const from = Date.parse(fromText);
  if (fromText)
    settings.expect(
      /^\d{4}-\d{2}-\d{2}T/.test(fromText) && Number.isFinite(from),
      'RECONCILE_FROM must be an ISO timestamp like 2026-07-01T00:00:00Z',
    );
  const projectId = settings.required('POSTHOG_PROJECT_ID', env.POSTHOG_PROJECT_ID);
  // Read as the worker reads it (lib/infra/config.ts): a typo is refused, never taken for "off".
  const dryRun = env.DRY_RUN?.trim().toLowerCase() || 'false';
  settings.expect(['true', 'false', '1', '0', 'yes', 'no'].includes(dryRun), 'DRY_RUN must be true or false');
  settings.expect(projectId === '' || /^\d+$/.test(projectId), 'POSTHOG_PROJECT_ID must be the numeric project id');
  const personEvents = personEventSettings(env, settings);
  return settings.done({
    enabled: true,
    posthog: {
      appHost: settings.url(setting('POSTHOG_APP_HOST').replace(/\/+$/, ''), 'POSTHOG_APP_HOST'),
      projectId,
      personalApiKey: settings.required('POSTHOG_PERSONAL_API_KEY', env.POSTHOG_PERSONAL_API_KEY),
    },
    from,
    lookbackMs: duration('RECONCILE_LOOKBACK'),
    minAgeMs: duration('RECONCILE_MIN_AGE', true),
    intervalMs: duration('RECONCILE_INTERVAL'),
    tableName: settings.required('TABLE_NAME', env.TABLE_NAME),
    queueUrl: settings.required('QUEUE_URL', env.QUEUE_URL),
    referralEvent: withDefault(env, 'REFERRAL_EVENT'),
    referrerEmailProperty: withDefault(env, 'REFERRER_EMAIL_PROPERTY'),
    redeemerEmailProperty: withDefault(env, 'REDEEMER_EMAIL_PROPERTY'),
    dryRun: ['true', '1', 'yes'].includes(dryRun),
    personEvents,
  });
}

/**
 * The worker's pay-on-value settings (lib/infra/config-qualify.ts: the same names, defaults and
 * checks), and whether QUALIFY_WHERE can go into the catch-up query (qualifyWhereProblem).
 */
export function personEventSettings(env: Env, settings: Settings): PersonEventSettings {
  const rules = qualificationSettings(settings, env);
  const whereProblem = rules.where === undefined ? undefined : qualifyWhereProblem(rules.where);
  settings.expect(
    whereProblem === undefined,
    `QUALIFY_WHERE ${whereProblem}: it must be one HogQL boolean, as in the destination's filter`,
  );
  return { qualifyEvent: rules.qualifyEvent, qualifyWhere: rules.where, qualifyWithinMs: rules.withinMs, revokeEvent: rules.revokeEvent };
}
