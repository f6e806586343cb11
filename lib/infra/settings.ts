import { PermanentError } from '../domain/errors';
import { parseDuration } from './duration';

/**
 * What every settings loader shares (lib/infra/config.ts and the config-*.ts beside it): the
 * environment's shape, every setting's default, and the reader that names every problem at once.
 */

export type Env = Record<string, string | undefined>;

export const RECONCILER_DEFAULTS = {
  RECONCILE_LOOKBACK: '72h',
  // Long enough that the webhook path (3 attempts within seconds, then the queue) has had its turn.
  RECONCILE_MIN_AGE: '5m',
  RECONCILE_INTERVAL: '15m',
} as const;

/** What a setting is when unset or blank (README "Configuration" documents each: tests/unit/docs-config.test.ts). */
export const DEFAULTS = {
  REFERRAL_EVENT: 'referral redeemed',
  REFERRER_EMAIL_PROPERTY: 'referrer_email',
  REDEEMER_EMAIL_PROPERTY: 'redeemer_email',
  REWARD_AMOUNT: '25.00',
  REWARD_CODE_LENGTH: '8',
  REWARD_TYPE: 'gift_card',
  // The latest stable version on 2026-12-01 (Shopify releases one a quarter and supports each for
  // at least 12 months: shopify.dev/docs/api/usage/versioning). 2026-01, 2026-04 and 2026-07 still
  // work: lib/adapters/shopify/gift-cards.ts sends each the gift-card amount input its schema documents.
  SHOPIFY_API_VERSION: '2026-10',
  CUSTOMERIO_REGION: 'us',
  CUSTOMERIO_EVENT: 'pyramid_scheme_fulfillment',
  // Generous for friends-and-family programs, low enough that one account farming invites stands out.
  MAX_REWARDS_PER_REFERRER: '10',
  REFERRAL_SIGNATURES: 'required',
  REQUIRE_REFERRAL_CODE: 'false',
  POSTHOG_HOST: 'https://us.i.posthog.com',
  POSTHOG_APP_HOST: 'https://us.posthog.com',
  REWARD_HOLD: '0',
  REVIEW_DISPOSABLE_EMAIL: 'false',
  REVIEW_SHARED_DEVICE: 'false',
  REVIEW_SHARED_IP: 'false',
  SHARED_SIGNAL_LOOKBACK: '30d',
  QUALIFY_WITHIN: '30d',
  REVOKE_PAID: 'false',
  DRY_RUN: 'false',
  MAX_RECEIVE_COUNT: '5',
  // The deployed queue's (serverless.yml custom.settings.visibilityTimeout).
  QUEUE_VISIBILITY_TIMEOUT: '360',
  // One container's worth, the whole budget (the local stack's one worker, the tests).
  WORKER_MAX_CONCURRENCY: '1',
  ...RECONCILER_DEFAULTS,
} as const;

type Defaulted = keyof typeof DEFAULTS;

/**
 * Shortest secret a loader accepts for a value we choose ourselves (WEBHOOK_SECRET, APP_API_KEY):
 * 32 random characters, beyond guessing. Vendor-issued keys (Shopify, Customer.io, PostHog) keep
 * whatever length their vendor gives them.
 */
export const MIN_SECRET_LENGTH = 32;

/**
 * Shortest HMAC key: the Standard Webhooks spec's signing secret is "Random. Between 24 bytes
 * (192 bits) and 64 bytes (512 bits)" (github.com/standard-webhooks/standard-webhooks,
 * spec/standard-webhooks.md, "Signature scheme"). A 1-byte key is found in 256 guesses against
 * one signed request. Longer than 64 is not weaker, so it is accepted.
 */
export const MIN_HMAC_KEY_BYTES = 24;

/** Hosts a plain-http vendor URL may name: the local stack's sandboxes and test fakes, never a network. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The setting, trimmed, or its default when unset or blank. */
export const withDefault = (env: Env, name: Defaulted): string => env[name]?.trim() || DEFAULTS[name];

/** What a loader says of a secret shorter than it must be (usable for any secret or key setting). */
export const weakSecretProblem = (name: string, minLength: number = MIN_SECRET_LENGTH, unit = 'characters'): string =>
  `${name} is too short: it must be at least ${minLength} ${unit}, random`;

/**
 * Reads settings by name and collects every problem, so one failed start names them all. Read by
 * hand, not with zod: they are flat strings, and zod would cost the worker bundle ~30 KB of the
 * ~98 KB it may add to the AWS SDK (docs/PERFORMANCE.md). zod stays for PostHog's payload in
 * ingest. Each `must` finishes a problem `${name} must be …`.
 */
export class Settings {
  private readonly problems: string[] = [];

  private constructor(private readonly env: Env) {}

  /** Runs `read` over `env`; throws PermanentError (config_invalid) naming every problem it found. */
  static load<T>(env: Env, read: (settings: Settings) => T): T {
    const settings = new Settings(env);
    const config = read(settings);
    if (settings.problems.length > 0) throw new PermanentError('config_invalid', `configuration: ${settings.problems.join('; ')}`);
    return config;
  }

  /** Trimmed, or its default (DEFAULTS) when unset or blank; undefined when it has none. */
  value(name: Defaulted): string;
  value(name: string): string | undefined;
  value(name: string): string | undefined {
    return withDefault(this.env, name as Defaulted);
  }

  /** Trimmed; a blank value counts as unset. */
  required(name: string, raw = this.env[name]): string {
    const trimmed = raw?.trim() ?? '';
    this.expect(trimmed !== '', `${name} is not set`);
    return trimmed;
  }

  /** Whole numbers only: "8.5" or "12abc" is a typo, not a rounding request. */
  integer(name: string, min: number, max: number, must: string): number {
    const raw = this.value(name) ?? '';
    const number = /^[+-]?\d+$/.test(raw) ? Number(raw) : Number.NaN;
    this.expect(Number.isSafeInteger(number) && number >= min && number <= max, `${name} must be ${must}`);
    return number;
  }

  /** `true` or `false` (or the words given); anything else is refused, never taken for "off". */
  flag(name: Defaulted, yes = ['true'], no = ['false']): boolean {
    const value = this.value(name).toLowerCase();
    this.expect([...yes, ...no].includes(value), `${name} must be true or false`);
    return yes.includes(value);
  }

  /** A duration (lib/infra/duration.ts), more than zero unless `allowZero`. */
  duration(name: Defaulted, like: string, allowZero = false): number {
    const ms = parseDuration(this.value(name));
    this.expect(ms !== undefined && (allowZero || ms > 0), `${name} must be a duration like ${like}`);
    return ms ?? 0;
  }

  /**
   * A vendor URL we send credentials to, without its trailing slashes: https, or plain http only to
   * a loopback host (127.0.0.1, localhost, [::1]: the local stack and the tests). Anything else
   * would carry a token or an API key in clear text.
   */
  url(name: string, raw = this.value(name) ?? ''): string {
    const trimmed = raw.replace(/\/+$/, '');
    const url = URL.canParse(trimmed) ? new URL(trimmed) : undefined;
    const ok = url?.protocol === 'https:' || (url?.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
    this.expect(ok, `${name} must be a URL, https (plain http only to 127.0.0.1, localhost or [::1])`);
    return trimmed;
  }

  /**
   * A secret we choose (a bearer token both sides hold), required and at least `minLength`
   * characters. The message never carries the value: a near-miss secret is most of the secret.
   */
  secret(name: string, minLength: number = MIN_SECRET_LENGTH): string {
    const value = this.required(name);
    if (value) this.expect(value.length >= minLength, weakSecretProblem(name, minLength));
    return value;
  }

  expect(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }
}

/** DRY_RUN, as the worker and the reconciler read it: a typo (DRY_RUN=ture) is refused, since read as "off" it would pay for real. */
export const dryRun = (settings: Settings): boolean => settings.flag('DRY_RUN', ['true', '1', 'yes'], ['false', '0', 'no']);
