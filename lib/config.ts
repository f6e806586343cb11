import * as z from 'zod/mini';
import { PermanentError } from './errors';
import { MAX_CODE_LENGTH, MIN_CODE_LENGTH } from './codes';
import { parseDomainList, type ProgramRules } from './rules';

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

const nonEmpty = (name: string) => z.string({ error: `${name} is not set` }).check(z.trim(), z.minLength(1, `${name} is not set`));
const value = (env: Env, name: keyof typeof DEFAULTS): string => env[name]?.trim() || DEFAULTS[name];

// Shopify rejects gift cards above $2,000 from the API; a typo like "2500" should fail at start, not per card.
const amountSchema = z
  .string()
  .check(
    z.regex(/^\d{1,4}(\.\d{1,2})?$/, 'REWARD_AMOUNT must be a decimal like 25.00'),
    z.refine((s) => Number(s) > 0 && Number(s) <= 2000, 'REWARD_AMOUNT must be more than 0 and at most 2000'),
  );

function parse<T>(schema: z.ZodMiniType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (!result.success) {
    const message = result.error.issues.map((issue) => issue.message).join('; ');
    throw new PermanentError('config_invalid', `configuration: ${message}`);
  }
  return result.data;
}

export function loadIngestConfig(env: Env): IngestConfig {
  return parse(
    z.object({
      webhookSecret: nonEmpty('WEBHOOK_SECRET'),
      webhookSigningSecret: z.optional(z.string()),
      referralEvent: z.string(),
      referrerEmailProperty: z.string(),
      redeemerEmailProperty: z.string(),
      queueUrl: nonEmpty('QUEUE_URL'),
    }),
    {
      webhookSecret: env.WEBHOOK_SECRET,
      webhookSigningSecret: env.WEBHOOK_SIGNING_SECRET?.trim() || undefined,
      referralEvent: value(env, 'REFERRAL_EVENT'),
      referrerEmailProperty: value(env, 'REFERRER_EMAIL_PROPERTY'),
      redeemerEmailProperty: value(env, 'REDEEMER_EMAIL_PROPERTY'),
      queueUrl: env.QUEUE_URL,
    },
  );
}

export function customerIoTrackUrl(region: string): string {
  return region === 'eu' ? 'https://track-eu.customer.io' : 'https://track.customer.io';
}

export function loadWorkerConfig(env: Env): WorkerConfig {
  const region = value(env, 'CUSTOMERIO_REGION').toLowerCase();
  // People paste the admin URL; accept it and keep only the host.
  const storeDomain = env.SHOPIFY_STORE_DOMAIN?.trim().replace(/^https?:\/\//i, '').replace(/\/.*$/, '');
  return parse(
    z.object({
      tableName: nonEmpty('TABLE_NAME'),
      deadLetterQueueUrl: nonEmpty('DLQ_URL'),
      rewardAmount: amountSchema,
      rewardCodeLength: z.coerce
        .number()
        .check(
          z.int(`REWARD_CODE_LENGTH must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}`),
          z.gte(MIN_CODE_LENGTH, `REWARD_CODE_LENGTH must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}`),
          z.lte(MAX_CODE_LENGTH, `REWARD_CODE_LENGTH must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}`),
        ),
      shopify: z.object({
        baseUrl: z.pipe(nonEmpty('SHOPIFY_STORE_DOMAIN (or SHOPIFY_BASE_URL)'), z.url('SHOPIFY_BASE_URL must be a URL')),
        accessToken: nonEmpty('SHOPIFY_ACCESS_TOKEN'),
        apiVersion: z.string().check(z.regex(/^\d{4}-\d{2}$|^unstable$/, 'SHOPIFY_API_VERSION must look like 2026-07')),
      }),
      customerio: z.object({
        trackUrl: z.url('CUSTOMERIO_TRACK_URL must be a URL'),
        siteId: nonEmpty('CUSTOMERIO_SITE_ID'),
        apiKey: nonEmpty('CUSTOMERIO_API_KEY'),
        eventName: nonEmpty('CUSTOMERIO_EVENT'),
      }),
      rewardType: z.enum(REWARD_TYPES, { error: 'REWARD_TYPE must be gift_card or discount_code' }),
      rules: z.object({
        maxRewardsPerReferrer: z.coerce
          .number()
          .check(
            z.int('MAX_REWARDS_PER_REFERRER must be a whole number (0 for no cap)'),
            z.gte(0, 'MAX_REWARDS_PER_REFERRER must be a whole number (0 for no cap)'),
          ),
        blockedDomains: z.array(z.string()),
      }),
      posthog: z.optional(z.object({ host: z.url('POSTHOG_HOST must be a URL'), apiKey: z.string().check(z.minLength(1)) })),
      rewardExpiresDays: z.optional(
        z.coerce
          .number()
          .check(
            z.int('REWARD_EXPIRES_DAYS must be a whole number of days'),
            z.gte(1, 'REWARD_EXPIRES_DAYS must be at least 1 (unset it for rewards that never expire)'),
            z.lte(3650, 'REWARD_EXPIRES_DAYS must be at most 3650'),
          ),
      ),
    }),
    {
      tableName: env.TABLE_NAME,
      deadLetterQueueUrl: env.DLQ_URL,
      rewardAmount: value(env, 'REWARD_AMOUNT'),
      rewardCodeLength: value(env, 'REWARD_CODE_LENGTH'),
      shopify: {
        baseUrl: (env.SHOPIFY_BASE_URL?.trim() || (storeDomain ? `https://${storeDomain}` : '')).replace(/\/+$/, ''),
        accessToken: env.SHOPIFY_ACCESS_TOKEN,
        apiVersion: value(env, 'SHOPIFY_API_VERSION'),
      },
      customerio: {
        trackUrl: (env.CUSTOMERIO_TRACK_URL?.trim() || customerIoTrackUrl(region)).replace(/\/+$/, ''),
        siteId: env.CUSTOMERIO_SITE_ID,
        apiKey: env.CUSTOMERIO_API_KEY,
        eventName: value(env, 'CUSTOMERIO_EVENT'),
      },
      rewardType: env.REWARD_TYPE?.trim().toLowerCase() || 'gift_card',
      rules: {
        maxRewardsPerReferrer: value(env, 'MAX_REWARDS_PER_REFERRER'),
        blockedDomains: parseDomainList(env.BLOCKED_EMAIL_DOMAINS),
      },
      rewardExpiresDays: env.REWARD_EXPIRES_DAYS?.trim() || undefined,
      posthog: env.POSTHOG_API_KEY?.trim()
        ? { host: value(env, 'POSTHOG_HOST').replace(/\/+$/, ''), apiKey: env.POSTHOG_API_KEY.trim() }
        : undefined,
    },
  );
}
