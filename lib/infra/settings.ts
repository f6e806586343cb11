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

/** The setting, trimmed, or its default when unset or blank. */
export const withDefault = (env: Env, name: keyof typeof DEFAULTS): string => env[name]?.trim() || DEFAULTS[name];

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
