import { PermanentError } from '../domain/errors';

/**
 * What every settings loader shares (lib/infra/config.ts, config-lifecycle.ts, config-reconciler.ts):
 * the environment's shape, the defaults of the settings more than one function reads, and the
 * collector that names every problem at once.
 */

export type Env = Record<string, string | undefined>;

export const DEFAULTS = {
  REFERRAL_EVENT: 'referral redeemed',
  REFERRER_EMAIL_PROPERTY: 'referrer_email',
  REDEEMER_EMAIL_PROPERTY: 'redeemer_email',
  REWARD_AMOUNT: '25.00',
  REWARD_CODE_LENGTH: '8',
  // The latest stable version on 2026-12-01 (Shopify releases one a quarter and supports each for
  // at least 12 months: shopify.dev/docs/api/usage/versioning). 2026-01, 2026-04 and 2026-07 still
  // work: lib/adapters/shopify/gift-cards.ts sends each the gift-card amount input its schema documents.
  SHOPIFY_API_VERSION: '2026-10',
  CUSTOMERIO_REGION: 'us',
  CUSTOMERIO_EVENT: 'pyramid_scheme_fulfillment',
  // Generous for friends-and-family programs, low enough that one account farming invites stands out.
  MAX_REWARDS_PER_REFERRER: '10',
  POSTHOG_HOST: 'https://us.i.posthog.com',
} as const;

/**
 * Shortest secret a loader accepts for a value we choose ourselves (WEBHOOK_SECRET): 32 random
 * characters, beyond guessing. Vendor-issued keys (Shopify, Customer.io, PostHog) keep whatever
 * length their vendor gives them.
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
export const withDefault = (env: Env, name: keyof typeof DEFAULTS): string => env[name]?.trim() || DEFAULTS[name];

/** What a loader says of a secret shorter than it must be (usable for any secret or key setting). */
export const weakSecretProblem = (name: string, minLength: number = MIN_SECRET_LENGTH, unit = 'characters'): string =>
  `${name} is too short: it must be at least ${minLength} ${unit}, random`;

/**
 * Collects every problem in the settings so one failed start names them all. Settings are read
 * by hand, not with zod: they are flat strings, and zod would cost the worker bundle ~30 KB of
 * the ~98 KB it may add to the AWS SDK (#5, docs/PERFORMANCE.md). zod stays for PostHog's
 * payload in ingest.
 */
export class Settings {
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

  /**
   * A vendor URL we send credentials to: https, or plain http only to a loopback host
   * (127.0.0.1, localhost, [::1]: the local stack and the tests). Anything else would carry a
   * token or an API key in clear text.
   */
  url(raw: string, name: string): string {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      // reported below
    }
    const ok = url?.protocol === 'https:' || (url?.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
    this.expect(ok, `${name} must be a URL, https (plain http only to 127.0.0.1, localhost or [::1])`);
    return raw;
  }

  /**
   * A secret we choose (a bearer token both sides hold), required and at least `minLength`
   * characters. The message never carries the value: a near-miss secret is most of the secret.
   */
  secret(name: string, raw: string | undefined, minLength: number = MIN_SECRET_LENGTH): string {
    const value = this.required(name, raw);
    if (value) this.expect(value.length >= minLength, weakSecretProblem(name, minLength));
    return value;
  }

  expect(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }

  done<T>(config: T): T {
    if (this.problems.length > 0) throw new PermanentError('config_invalid', `configuration: ${this.problems.join('; ')}`);
    return config;
  }
}
