import type { QueryClientOptions } from '../adapters/posthog-query';
import { parseRate } from './duration';
import { Settings, type Env } from './settings';

// ── Reward lifecycle (hold, review guards, budgets): README "Reward lifecycle" ─────────────

/** Most referrals REVIEW_REFERRER_VELOCITY may allow per window. */
export const MAX_VELOCITY_COUNT = 1_000;

export interface LifecycleConfig {
  /** REWARD_HOLD in ms; 0 pays at once. */
  holdMs: number;
  /** Whole cents per UTC day / calendar month, both rewards of a referral counted; absent = no budget. */
  dailyBudgetCents?: number;
  monthlyBudgetCents?: number;
  /** REVIEW_REFERRER_VELOCITY: more than `count` referrals by one referrer within `windowMs` → review. */
  velocity?: { count: number; windowMs: number };
  /** REVIEW_DISPOSABLE_EMAIL: either email on a disposable domain → review. */
  reviewDisposable: boolean;
  /**
   * REVIEW_SHARED_DEVICE / REVIEW_SHARED_IP: the referrer's and the redeemer's PostHog persons
   * used one `$device_id` / `$ip` within SHARED_SIGNAL_LOOKBACK → review. Absent when both are off.
   */
  sharedSignals?: { device: boolean; ip: boolean; lookbackMs: number };
}

/** The lifecycle settings on their own (ops reads them too); throws PermanentError listing every problem. */
export const loadLifecycleConfig = (env: Env): LifecycleConfig => Settings.load(env, lifecycleSettings);

/** Reads the lifecycle settings into `settings`, so the worker's own loader (lib/infra/config.ts) names their problems with the rest. */
export function lifecycleSettings(settings: Settings): LifecycleConfig {
  const holdMs = settings.duration('REWARD_HOLD', '90s, 15m, 36h or 14d (0 for none)', true);
  const budget = (name: string): number | undefined => {
    const raw = settings.value(name);
    if (!raw) return undefined;
    const ok = /^\d{1,9}(\.\d{1,2})?$/.test(raw) && Number(raw) > 0;
    settings.expect(ok, `${name} must be an amount like 500 or 500.00 (unset for no budget)`);
    return ok ? Math.round(Number(raw) * 100) : undefined;
  };
  const velocityText = settings.value('REVIEW_REFERRER_VELOCITY');
  const velocity = velocityText ? parseRate(velocityText) : undefined;
  settings.expect(!velocityText || velocity !== undefined, 'REVIEW_REFERRER_VELOCITY must look like 5/24h (unset for none)');
  // The referrer's item keeps its latest N+1 sightings (lib/adapters/dynamodb/ledger.ts `velocity`): bounded well inside 400 KB.
  settings.expect(
    !velocity || velocity.count <= MAX_VELOCITY_COUNT,
    `REVIEW_REFERRER_VELOCITY allows at most ${MAX_VELOCITY_COUNT} per window`,
  );
  const reviewDisposable = settings.flag('REVIEW_DISPOSABLE_EMAIL');
  const device = settings.flag('REVIEW_SHARED_DEVICE');
  const ip = settings.flag('REVIEW_SHARED_IP');
  const lookbackMs = settings.duration('SHARED_SIGNAL_LOOKBACK', '7d, 30d or 720h');
  return {
    ...((device || ip) && { sharedSignals: { device, ip, lookbackMs } }),
    holdMs,
    dailyBudgetCents: budget('PROGRAM_DAILY_BUDGET'),
    monthlyBudgetCents: budget('PROGRAM_MONTHLY_BUDGET'),
    velocity,
    reviewDisposable,
  };
}

/** PostHog's Query API: POSTHOG_APP_HOST, POSTHOG_PROJECT_ID, POSTHOG_PERSONAL_API_KEY (the reconciler's, and the shared-signal guards'). */
export type PostHogQueryConfig = Pick<QueryClientOptions, 'appHost' | 'projectId' | 'personalApiKey'>;

/**
 * The worker's Query API settings, required while a shared-signal guard is on (a guard that could
 * not ask would have to pay blind or hold everything); absent otherwise.
 */
export function sharedSignalQuerySettings(settings: Settings, lifecycle: LifecycleConfig): PostHogQueryConfig | undefined {
  if (!lifecycle.sharedSignals) return undefined;
  const why = "(REVIEW_SHARED_DEVICE / REVIEW_SHARED_IP ask PostHog's Query API)";
  const projectId = settings.value('POSTHOG_PROJECT_ID') ?? '';
  settings.expect(/^\d+$/.test(projectId), `POSTHOG_PROJECT_ID must be the numeric project id ${why}`);
  const personalApiKey = settings.value('POSTHOG_PERSONAL_API_KEY') ?? '';
  settings.expect(personalApiKey !== '', `POSTHOG_PERSONAL_API_KEY is not set ${why}`);
  return { appHost: settings.url('POSTHOG_APP_HOST'), projectId, personalApiKey };
}
