import { PermanentError } from '../domain/errors';
import { MAX_CODE_LENGTH, MIN_CODE_LENGTH } from '../domain/codes';
import { CUSTOMERIO_MAX_EVENT_NAME_BYTES } from '../domain/limits';
import { parseDomainList, type ProgramRules } from '../domain/rules';
import { parseDuration, parseRate } from './duration';
import type { ShopifyAuthConfig } from '../adapters/shopify/auth';
import { InvalidSigningSecretError, signingKey } from '../inbound/signature';

export type Env = Record<string, string | undefined>;

/** Keys read from the Secrets Manager JSON secret in AWS (and from plain env vars locally). */
export const SECRET_KEYS = [
  'WEBHOOK_SECRET',
  'WEBHOOK_SIGNING_SECRET',
  'SHOPIFY_ACCESS_TOKEN',
  'SHOPIFY_CLIENT_ID',
  'SHOPIFY_CLIENT_SECRET',
  'CUSTOMERIO_SITE_ID',
  'CUSTOMERIO_API_KEY',
  'POSTHOG_API_KEY',
] as const;

export const DEFAULTS = {
  REFERRAL_EVENT: 'referral redeemed',
  REFERRER_EMAIL_PROPERTY: 'referrer_email',
  REDEEMER_EMAIL_PROPERTY: 'redeemer_email',
  REWARD_AMOUNT: '25.00',
  REWARD_CODE_LENGTH: '8',
  // The latest stable version on 2026-12-01 (Shopify releases one a quarter and supports each for
  // at least 12 months: shopify.dev/docs/api/usage/versioning). 2026-01, 2026-04 and 2026-07 still
  // work: lib/adapters/shopify/client.ts sends each the gift-card amount input its schema documents.
  SHOPIFY_API_VERSION: '2026-10',
  CUSTOMERIO_REGION: 'us',
  CUSTOMERIO_EVENT: 'pyramid_scheme_fulfillment',
  // Generous for friends-and-family programs, low enough that one account farming invites stands out.
  MAX_REWARDS_PER_REFERRER: '10',
  POSTHOG_HOST: 'https://us.i.posthog.com',
} as const;

/**
 * Largest body ingest reads: what API Gateway and Lambda can deliver at all. An HTTP API takes
 * payloads up to 10 MB ("Quotas for configuring and running an HTTP API in API Gateway"), but a
 * synchronous Lambda invocation carries at most 6 MB ("Invoke", AWS Lambda API reference), and
 * the body travels inside that event, so 6 MB is the real ceiling. PostHog's default body is
 * ~1–2 KB, but it includes the whole person: one with many properties runs to hundreds of KB,
 * and refusing it with a 4xx would lose the referral (PostHog does not retry 4xx; issue #10,
 * defect 9). Only the referral's few fields are queued, whatever the body's size.
 */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

export interface IngestConfig {
  webhookSecret: string;
  webhookSigningSecret?: string;
  referralEvent: string;
  referrerEmailProperty: string;
  redeemerEmailProperty: string;
  queueUrl: string;
}

// The reward types are the domain's (lib/domain/ledger-port.ts); re-exported for the settings' readers.
import { REWARD_TYPES, type RewardType } from '../domain/ledger-port';
export { REWARD_TYPES, type RewardType };

export interface WorkerConfig {
  rewardAmount: string;
  rewardCodeLength: number;
  /** `auth`: a static token (admin-created app) or the client credentials grant (Dev Dashboard app). */
  shopify: { baseUrl: string; apiVersion: string; auth: ShopifyAuthConfig };
  customerio: { trackUrl: string; siteId: string; apiKey: string; eventName: string };
  /** gift_card (default) or discount_code (for shops without the gift-card scopes). */
  rewardType: RewardType;
  rules: ProgramRules;
  /** Days until a reward expires; absent means rewards do not expire. */
  rewardExpiresDays?: number;
  /** Absent without POSTHOG_API_KEY: outcomes are then not captured. */
  posthog?: { host: string; apiKey: string };
  /** Hold, review guards and budgets (lib/domain/lifecycle/); all off by default. */
  lifecycle: LifecycleConfig;
}

const value = (env: Env, name: keyof typeof DEFAULTS): string => env[name]?.trim() || DEFAULTS[name];

/**
 * Collects every problem in the settings so one failed start names them all. Settings are read
 * by hand, not with zod: they are flat strings, and zod would cost the worker bundle ~30 KB of
 * the ~98 KB it may add to the AWS SDK (#5, docs/PERFORMANCE.md). zod stays for PostHog's
 * payload in ingest.
 */
class Settings {
  private readonly problems: string[] = [];

  /** Trimmed; a blank value counts as unset. */
  required(name: string, raw: string | undefined): string {
    const trimmed = raw?.trim() ?? '';
    this.expect(trimmed !== '', `${name} is not set`);
    return trimmed;
  }

  /** Whole numbers only: "8.5" or "12abc" is a typo, not a rounding request. */
  integer(raw: string, min: number, max: number, problem: string): number {
    const number = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    this.expect(Number.isSafeInteger(number) && number >= min && number <= max, problem);
    return number;
  }

  /** http(s) only: every URL we read is an API we POST to. */
  url(raw: string, problem: string): string {
    let protocol = '';
    try {
      protocol = new URL(raw).protocol;
    } catch {
      // reported below
    }
    this.expect(protocol === 'https:' || protocol === 'http:', problem);
    return raw;
  }

  expect(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }

  done<T>(config: T): T {
    if (this.problems.length > 0) throw new PermanentError('config_invalid', `configuration: ${this.problems.join('; ')}`);
    return config;
  }
}

/**
 * Ingest's settings. An unusable WEBHOOK_SIGNING_SECRET is refused here, with the other
 * problems, so ingest has one "misconfigured" path (503 not_configured) rather than a second one
 * discovered while checking the first signature.
 */
export function loadIngestConfig(env: Env): IngestConfig {
  const settings = new Settings();
  const signingSecret = env.WEBHOOK_SIGNING_SECRET?.trim() || undefined;
  if (signingSecret) {
    try {
      signingKey(signingSecret);
    } catch (error) {
      if (!(error instanceof InvalidSigningSecretError)) throw error;
      // Never the value: a near-miss secret is most of the secret.
      settings.expect(false, 'WEBHOOK_SIGNING_SECRET must be whsec_<base64> (or bare base64) with a non-empty key');
    }
  }
  return settings.done({
    webhookSecret: settings.required('WEBHOOK_SECRET', env.WEBHOOK_SECRET),
    webhookSigningSecret: signingSecret,
    referralEvent: value(env, 'REFERRAL_EVENT'),
    referrerEmailProperty: value(env, 'REFERRER_EMAIL_PROPERTY'),
    redeemerEmailProperty: value(env, 'REDEEMER_EMAIL_PROPERTY'),
    queueUrl: settings.required('QUEUE_URL', env.QUEUE_URL),
  });
}

function customerIoTrackUrl(region: string): string {
  return region === 'eu' ? 'https://track-eu.customer.io' : 'https://track.customer.io';
}

// Shopify rejects gift cards above $2,000 from the API; a typo like "2500" should fail at start, not per card.
function rewardAmount(settings: Settings, amount: string): string {
  if (!/^\d{1,4}(\.\d{1,2})?$/.test(amount)) settings.expect(false, 'REWARD_AMOUNT must be a decimal like 25.00');
  else settings.expect(Number(amount) > 0 && Number(amount) <= 2000, 'REWARD_AMOUNT must be more than 0 and at most 2000');
  return amount;
}

/**
 * SHOPIFY_ACCESS_TOKEN (an admin-created app's static token), or SHOPIFY_CLIENT_ID with
 * SHOPIFY_CLIENT_SECRET (a Dev Dashboard app: tokens by the client credentials grant). Both at
 * once is refused rather than guessed at: the wrong guess would fail every referral quietly.
 */
function shopifyAuth(settings: Settings, env: Env): ShopifyAuthConfig {
  const accessToken = env.SHOPIFY_ACCESS_TOKEN?.trim();
  const clientId = env.SHOPIFY_CLIENT_ID?.trim();
  const clientSecret = env.SHOPIFY_CLIENT_SECRET?.trim();
  if (accessToken && (clientId || clientSecret)) {
    settings.expect(false, 'set SHOPIFY_ACCESS_TOKEN or SHOPIFY_CLIENT_ID/SHOPIFY_CLIENT_SECRET, not both');
  } else if (clientId || clientSecret) {
    settings.expect(Boolean(clientId), 'SHOPIFY_CLIENT_ID is not set (SHOPIFY_CLIENT_SECRET is; a Dev Dashboard app needs both)');
    settings.expect(Boolean(clientSecret), 'SHOPIFY_CLIENT_SECRET is not set (SHOPIFY_CLIENT_ID is; a Dev Dashboard app needs both)');
    return { mode: 'client_credentials', clientId: clientId ?? '', clientSecret: clientSecret ?? '' };
  }
  settings.expect(Boolean(accessToken), 'SHOPIFY_ACCESS_TOKEN is not set (or, for a Dev Dashboard app, SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET)');
  return { mode: 'static', accessToken: accessToken ?? '' };
}

/** The shop, its API version and its credentials: the worker's, and the ops commands' that call Shopify (revoke). */
function shopifySettings(settings: Settings, env: Env): WorkerConfig['shopify'] {
  // People paste the admin URL; accept it and keep only the host.
  const storeDomain = env.SHOPIFY_STORE_DOMAIN?.trim().replace(/^https?:\/\//i, '').replace(/\/.*$/, '');
  const shopifyUrl = settings.required(
    'SHOPIFY_STORE_DOMAIN (or SHOPIFY_BASE_URL)',
    env.SHOPIFY_BASE_URL?.trim() || (storeDomain ? `https://${storeDomain}` : ''),
  );
  const apiVersion = value(env, 'SHOPIFY_API_VERSION');
  settings.expect(/^\d{4}-\d{2}$|^unstable$/.test(apiVersion), 'SHOPIFY_API_VERSION must look like 2026-10');
  return {
    baseUrl: shopifyUrl && settings.url(shopifyUrl.replace(/\/+$/, ''), 'SHOPIFY_BASE_URL must be a URL'),
    apiVersion,
    auth: shopifyAuth(settings, env),
  };
}

export function loadShopifyConfig(env: Env): WorkerConfig['shopify'] {
  const settings = new Settings();
  return settings.done(shopifySettings(settings, env));
}

export function loadWorkerConfig(env: Env): WorkerConfig {
  const settings = new Settings();
  const codeLength = `REWARD_CODE_LENGTH must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}`;
  const region = value(env, 'CUSTOMERIO_REGION').toLowerCase();
  const rewardType = (env.REWARD_TYPE?.trim().toLowerCase() || 'gift_card') as RewardType;
  settings.expect(REWARD_TYPES.includes(rewardType), 'REWARD_TYPE must be gift_card or discount_code');
  const expiresDays = env.REWARD_EXPIRES_DAYS?.trim();
  const posthogKey = env.POSTHOG_API_KEY?.trim();
  const eventName = value(env, 'CUSTOMERIO_EVENT');
  // Customer.io refuses a longer event name (lib/domain/limits.ts): refuse it at start, before any card exists.
  settings.expect(
    Buffer.byteLength(eventName) <= CUSTOMERIO_MAX_EVENT_NAME_BYTES,
    `CUSTOMERIO_EVENT must be at most ${CUSTOMERIO_MAX_EVENT_NAME_BYTES} bytes (Customer.io's limit)`,
  );

  return settings.done({
    rewardAmount: rewardAmount(settings, value(env, 'REWARD_AMOUNT')),
    rewardCodeLength: settings.integer(value(env, 'REWARD_CODE_LENGTH'), MIN_CODE_LENGTH, MAX_CODE_LENGTH, codeLength),
    shopify: shopifySettings(settings, env),
    customerio: {
      trackUrl: settings.url(
        (env.CUSTOMERIO_TRACK_URL?.trim() || customerIoTrackUrl(region)).replace(/\/+$/, ''),
        'CUSTOMERIO_TRACK_URL must be a URL',
      ),
      siteId: settings.required('CUSTOMERIO_SITE_ID', env.CUSTOMERIO_SITE_ID),
      apiKey: settings.required('CUSTOMERIO_API_KEY', env.CUSTOMERIO_API_KEY),
      eventName,
    },
    rewardType,
    rules: {
      maxRewardsPerReferrer: settings.integer(
        value(env, 'MAX_REWARDS_PER_REFERRER'),
        0,
        Number.MAX_SAFE_INTEGER,
        'MAX_REWARDS_PER_REFERRER must be a whole number (0 for no cap)',
      ),
      blockedDomains: parseDomainList(env.BLOCKED_EMAIL_DOMAINS),
    },
    rewardExpiresDays: expiresDays
      ? settings.integer(expiresDays, 1, 3650, 'REWARD_EXPIRES_DAYS must be a whole number of days from 1 to 3650 (unset it for rewards that never expire)')
      : undefined,
    posthog: posthogKey
      ? { host: settings.url(value(env, 'POSTHOG_HOST').replace(/\/+$/, ''), 'POSTHOG_HOST must be a URL'), apiKey: posthogKey }
      : undefined,
    lifecycle: lifecycleSettings(settings, env),
  });
}

/**
 * What a worker container is bound to for its whole life: its table, its DLQ, the queue's redrive
 * count and DRY_RUN. Plain function environment (serverless.yml), never in the secret, so it is
 * read once per container; the fulfilment settings (loadWorkerConfig) are re-read per invocation
 * because the secret may rotate.
 */
export interface WorkerRuntimeConfig {
  tableName: string;
  deadLetterQueueUrl: string;
  /** The queue's redrive maxReceiveCount: on that receive a retryable failure is recorded as FAILED (retries_exhausted). */
  maxReceiveCount: number;
  /** DRY_RUN: rehearse and park in the DLQ (lib/domain/dry-run.ts), pay nothing. */
  dryRun: boolean;
}

/** SQS's redrive policy takes a maxReceiveCount of 1 to 1,000 (aws-cdk-lib's aws-sqs validateQueueProps checks the same range). */
const MAX_RECEIVE_COUNT_LIMIT = 1000;

export function loadWorkerRuntimeConfig(env: Env): WorkerRuntimeConfig {
  const settings = new Settings();
  const dryRun = env.DRY_RUN?.trim().toLowerCase() || 'false';
  // A typo (DRY_RUN=ture) is refused rather than read as "off": guessing wrong would pay for real.
  settings.expect(['true', 'false', '1', '0', 'yes', 'no'].includes(dryRun), 'DRY_RUN must be true or false');
  return settings.done({
    tableName: settings.required('TABLE_NAME', env.TABLE_NAME),
    deadLetterQueueUrl: settings.required('DLQ_URL', env.DLQ_URL),
    // "5x" must not become NaN: the retries_exhausted branch compares against it and would never fire.
    maxReceiveCount: settings.integer(
      env.MAX_RECEIVE_COUNT?.trim() || '5',
      1,
      MAX_RECEIVE_COUNT_LIMIT,
      `MAX_RECEIVE_COUNT must be a whole number from 1 to ${MAX_RECEIVE_COUNT_LIMIT} (the queue's redrive maxReceiveCount)`,
    ),
    dryRun: ['true', '1', 'yes'].includes(dryRun),
  });
}

/** The releaser's settings (functions/release.ts). */
export interface ReleaserConfig {
  tableName: string;
  queueUrl: string;
}

export function loadReleaserConfig(env: Env): ReleaserConfig {
  const settings = new Settings();
  return settings.done({
    tableName: settings.required('TABLE_NAME', env.TABLE_NAME),
    queueUrl: settings.required('QUEUE_URL', env.QUEUE_URL),
  });
}

/**
 * The service name and metrics namespace every function logs and publishes under. Read here, with
 * our defaults, because a constructor option beats Powertools' own env var: passing a default
 * straight to Logger/Metrics would hide the deployed POWERTOOLS_SERVICE_NAME. The log level
 * (POWERTOOLS_LOG_LEVEL, LOG_LEVEL, AWS_LAMBDA_LOG_LEVEL), POWERTOOLS_METRICS_DISABLED and
 * POWERTOOLS_DEV are left to Powertools: they are its documented interface, it reads them at
 * construction with its own precedence, and copying that here would only let the two drift.
 */
export function loadObservabilityConfig(env: Env): { serviceName: string; metricsNamespace: string } {
  return {
    serviceName: env.POWERTOOLS_SERVICE_NAME?.trim() || 'referral-rewards',
    metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE?.trim() || 'ReferralRewards',
  };
}

// ── Reward lifecycle (hold, review guards, budgets): README "Reward lifecycle" ─────────────

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
}

/** The lifecycle settings on their own (ops reads them too); throws PermanentError listing every problem. */
export function loadLifecycleConfig(env: Env): LifecycleConfig {
  const settings = new Settings();
  return settings.done(lifecycleSettings(settings, env));
}

function lifecycleSettings(settings: Settings, env: Env): LifecycleConfig {
  const hold = env.REWARD_HOLD?.trim() || '0';
  const holdMs = parseDuration(hold);
  settings.expect(holdMs !== undefined, 'REWARD_HOLD must be a duration like 90s, 15m, 36h or 14d (0 for none)');
  const budget = (name: string): number | undefined => {
    const raw = env[name]?.trim();
    if (!raw) return undefined;
    const ok = /^\d{1,9}(\.\d{1,2})?$/.test(raw) && Number(raw) > 0;
    settings.expect(ok, `${name} must be an amount like 500 or 500.00 (unset for no budget)`);
    return ok ? Math.round(Number(raw) * 100) : undefined;
  };
  const velocityText = env.REVIEW_REFERRER_VELOCITY?.trim();
  const velocity = velocityText ? parseRate(velocityText) : undefined;
  settings.expect(!velocityText || velocity !== undefined, 'REVIEW_REFERRER_VELOCITY must look like 5/24h (unset for none)');
  const disposable = env.REVIEW_DISPOSABLE_EMAIL?.trim().toLowerCase() || 'false';
  settings.expect(['true', 'false'].includes(disposable), 'REVIEW_DISPOSABLE_EMAIL must be true or false');
  return {
    holdMs: holdMs ?? 0,
    dailyBudgetCents: budget('PROGRAM_DAILY_BUDGET'),
    monthlyBudgetCents: budget('PROGRAM_MONTHLY_BUDGET'),
    velocity,
    reviewDisposable: disposable === 'true',
  };
}

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
    };

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
  if (fromText) settings.expect(/^\d{4}-\d{2}-\d{2}T/.test(fromText) && Number.isFinite(from), 'RECONCILE_FROM must be an ISO timestamp like 2026-07-01T00:00:00Z');
  const projectId = settings.required('POSTHOG_PROJECT_ID', env.POSTHOG_PROJECT_ID);
  settings.expect(projectId === '' || /^\d+$/.test(projectId), 'POSTHOG_PROJECT_ID must be the numeric project id');
  return settings.done({
    enabled: true,
    posthog: {
      appHost: settings.url(setting('POSTHOG_APP_HOST').replace(/\/+$/, ''), 'POSTHOG_APP_HOST must be a URL'),
      projectId,
      personalApiKey: settings.required('POSTHOG_PERSONAL_API_KEY', env.POSTHOG_PERSONAL_API_KEY),
    },
    from,
    lookbackMs: duration('RECONCILE_LOOKBACK'),
    minAgeMs: duration('RECONCILE_MIN_AGE', true),
    intervalMs: duration('RECONCILE_INTERVAL'),
    tableName: settings.required('TABLE_NAME', env.TABLE_NAME),
    queueUrl: settings.required('QUEUE_URL', env.QUEUE_URL),
    referralEvent: value(env, 'REFERRAL_EVENT'),
    referrerEmailProperty: value(env, 'REFERRER_EMAIL_PROPERTY'),
    redeemerEmailProperty: value(env, 'REDEEMER_EMAIL_PROPERTY'),
  });
}
