import { PermanentError } from './errors';
import { MAX_CODE_LENGTH, MIN_CODE_LENGTH } from './codes';
import { parseDomainList, type ProgramRules } from './rules';
import { parseDuration } from './duration';

export type Env = Record<string, string | undefined>;

/** Keys read from the Secrets Manager JSON secret in AWS (and from plain env vars locally). */
export const SECRET_KEYS = [
  'WEBHOOK_SECRET',
  'WEBHOOK_SIGNING_SECRET',
  'SHOPIFY_ACCESS_TOKEN',
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
  // Shopify keeps a stable version for 12 months; 2026-07 is current and still has
  // giftCardCreate's `initialValue` (deprecated from 2026-10 onwards).
  SHOPIFY_API_VERSION: '2026-07',
  CUSTOMERIO_REGION: 'us',
  CUSTOMERIO_EVENT: 'pyramid_scheme_fulfillment',
  // Generous for friends-and-family programs, low enough that one account farming invites stands out.
  MAX_REWARDS_PER_REFERRER: '10',
  POSTHOG_HOST: 'https://us.i.posthog.com',
} as const;

/** Largest body ingest reads: PostHog's default body is ~1–2 KB; anything near this is not a referral. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface IngestConfig {
  webhookSecret: string;
  webhookSigningSecret?: string;
  referralEvent: string;
  referrerEmailProperty: string;
  redeemerEmailProperty: string;
  queueUrl: string;
}

export const REWARD_TYPES = ['gift_card', 'discount_code'] as const;
export type RewardType = (typeof REWARD_TYPES)[number];

export interface WorkerConfig {
  tableName: string;
  deadLetterQueueUrl: string;
  rewardAmount: string;
  rewardCodeLength: number;
  shopify: { baseUrl: string; accessToken: string; apiVersion: string };
  customerio: { trackUrl: string; siteId: string; apiKey: string; eventName: string };
  /** gift_card (default) or discount_code (for shops without the gift-card scopes). */
  rewardType: RewardType;
  rules: ProgramRules;
  /** Days until a reward expires; absent means rewards do not expire. */
  rewardExpiresDays?: number;
  /** Absent without POSTHOG_API_KEY: outcomes are then not captured. */
  posthog?: { host: string; apiKey: string };
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

export function loadIngestConfig(env: Env): IngestConfig {
  const settings = new Settings();
  return settings.done({
    webhookSecret: settings.required('WEBHOOK_SECRET', env.WEBHOOK_SECRET),
    webhookSigningSecret: env.WEBHOOK_SIGNING_SECRET?.trim() || undefined,
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

export function loadWorkerConfig(env: Env): WorkerConfig {
  const settings = new Settings();
  const codeLength = `REWARD_CODE_LENGTH must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}`;
  const region = value(env, 'CUSTOMERIO_REGION').toLowerCase();
  // People paste the admin URL; accept it and keep only the host.
  const storeDomain = env.SHOPIFY_STORE_DOMAIN?.trim().replace(/^https?:\/\//i, '').replace(/\/.*$/, '');
  const shopifyUrl = settings.required(
    'SHOPIFY_STORE_DOMAIN (or SHOPIFY_BASE_URL)',
    env.SHOPIFY_BASE_URL?.trim() || (storeDomain ? `https://${storeDomain}` : ''),
  );
  const apiVersion = value(env, 'SHOPIFY_API_VERSION');
  settings.expect(/^\d{4}-\d{2}$|^unstable$/.test(apiVersion), 'SHOPIFY_API_VERSION must look like 2026-07');
  const rewardType = (env.REWARD_TYPE?.trim().toLowerCase() || 'gift_card') as RewardType;
  settings.expect(REWARD_TYPES.includes(rewardType), 'REWARD_TYPE must be gift_card or discount_code');
  const expiresDays = env.REWARD_EXPIRES_DAYS?.trim();
  const posthogKey = env.POSTHOG_API_KEY?.trim();

  return settings.done({
    tableName: settings.required('TABLE_NAME', env.TABLE_NAME),
    deadLetterQueueUrl: settings.required('DLQ_URL', env.DLQ_URL),
    rewardAmount: rewardAmount(settings, value(env, 'REWARD_AMOUNT')),
    rewardCodeLength: settings.integer(value(env, 'REWARD_CODE_LENGTH'), MIN_CODE_LENGTH, MAX_CODE_LENGTH, codeLength),
    shopify: {
      baseUrl: shopifyUrl && settings.url(shopifyUrl.replace(/\/+$/, ''), 'SHOPIFY_BASE_URL must be a URL'),
      accessToken: settings.required('SHOPIFY_ACCESS_TOKEN', env.SHOPIFY_ACCESS_TOKEN),
      apiVersion,
    },
    customerio: {
      trackUrl: settings.url(
        (env.CUSTOMERIO_TRACK_URL?.trim() || customerIoTrackUrl(region)).replace(/\/+$/, ''),
        'CUSTOMERIO_TRACK_URL must be a URL',
      ),
      siteId: settings.required('CUSTOMERIO_SITE_ID', env.CUSTOMERIO_SITE_ID),
      apiKey: settings.required('CUSTOMERIO_API_KEY', env.CUSTOMERIO_API_KEY),
      eventName: value(env, 'CUSTOMERIO_EVENT'),
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
  });
}

/** The reconciler's settings (lib/reconciler.ts); `enabled: false` when none of its switches is set. */
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
