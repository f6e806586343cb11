import { MAX_CODE_LENGTH, MIN_CODE_LENGTH } from '../domain/codes';
import { CUSTOMERIO_MAX_EVENT_NAME_BYTES } from '../domain/limits';
import { parseDomainList, type ProgramRules, type ReferralSignatures } from '../domain/rules';
import { MIN_SIGNING_KEY_BYTES } from '../domain/vouch';
import type { ShopifyAuthConfig } from '../adapters/shopify/auth';
import type { CustomerIoClientOptions } from '../adapters/customerio';
import type { PostHogCaptureOptions } from '../adapters/posthog-capture';
import type { PayloadOptions } from '../inbound/posthog-webhook';
import { InvalidSigningSecretError, signingKey } from '../inbound/signature';
import { lifecycleSettings, sharedSignalQuerySettings, type LifecycleConfig, type PostHogQueryConfig } from './config-lifecycle';
import { qualificationSettings } from './config-qualify';
import type { QualificationRules } from '../domain/qualify';
import { REWARD_TYPES, type RewardType } from '../domain/ledger-port';
import { dryRun, MIN_HMAC_KEY_BYTES, Settings, weakSecretProblem, type Env } from './settings';

// The shared pieces and the other loaders live in their own files; importers read them from here.
export { DEFAULTS, MIN_SECRET_LENGTH, RECONCILER_DEFAULTS, type Env } from './settings';
export { loadLifecycleConfig, type LifecycleConfig } from './config-lifecycle';
export { loadReconcilerConfig, type ReconcilerConfig } from './config-reconciler';
export { loadQualificationConfig } from './config-qualify';

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
  'REFERRAL_SIGNING_KEY',
  // Only while REFERRAL_SIGNING_KEY is being rotated (docs/OPERATIONS.md).
  'REFERRAL_SIGNING_KEY_PREVIOUS',
  // Only while REVIEW_SHARED_DEVICE / REVIEW_SHARED_IP are on: the guard asks PostHog's Query API.
  'POSTHOG_PERSONAL_API_KEY',
] as const;

/**
 * Largest body ingest reads: what API Gateway and Lambda can deliver at all. An HTTP API takes
 * payloads up to 10 MB ("Quotas for configuring and running an HTTP API in API Gateway"), but a
 * synchronous Lambda invocation, the body inside it, carries at most 6 MB ("Invoke", AWS Lambda
 * API reference). PostHog's body (~1–2 KB by default) holds the whole person, which can run to
 * hundreds of KB, and a 4xx would lose the referral (PostHog does not retry 4xx): so no body a
 * real delivery can carry is refused for its size; only the referral's few fields are queued.
 */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

/** What parseWebhook reads (QUALIFY_EVENT, REVOKE_EVENT also queued, as person events), and where ingest queues it. */
export interface IngestConfig extends PayloadOptions {
  webhookSecret: string;
  webhookSigningSecret?: string;
  queueUrl: string;
}

/** Customer.io's Track API and the event names the worker (and, for statuses, the releaser) sends. */
export interface CustomerIoConfig extends Pick<CustomerIoClientOptions, 'trackUrl' | 'siteId' | 'apiKey'> {
  /** CUSTOMERIO_EVENT: the fulfilment campaign's trigger. */
  eventName: string;
  /** CUSTOMERIO_STATUS_EVENT: the status campaign's trigger; absent (the default), no status is told. */
  statusEvent?: string;
}

export interface WorkerConfig {
  rewardAmount: string;
  rewardCodeLength: number;
  /** `auth`: a static token (admin-created app) or the client credentials grant (Dev Dashboard app). */
  shopify: { baseUrl: string; apiVersion: string; auth: ShopifyAuthConfig };
  customerio: CustomerIoConfig;
  /** gift_card (default) or discount_code (for shops without the gift-card scopes); the domain's (lib/domain/ledger-port.ts). */
  rewardType: RewardType;
  rules: ProgramRules;
  /** Days until a reward expires; absent means rewards do not expire. */
  rewardExpiresDays?: number;
  /** Absent without POSTHOG_API_KEY: outcomes are then not captured. */
  posthog?: PostHogCaptureConfig;
  /** Hold, review guards and budgets (lib/domain/lifecycle/); all off by default. */
  lifecycle: LifecycleConfig;
  /** REQUIRE_REFERRAL_CODE: refuse referrals that name no referral code (lib/domain/referral-codes.ts). */
  requireReferralCode: boolean;
  /** The Query API the shared device / IP guards ask; present only while one is on. */
  sharedSignalQuery?: PostHogQueryConfig;
  /** Pay on value: QUALIFY_EVENT and its window, REVOKE_EVENT (lib/infra/config-qualify.ts). */
  qualification: QualificationRules;
}

/**
 * Ingest's settings. An unusable WEBHOOK_SIGNING_SECRET is refused here, with the other
 * problems, so ingest has one "misconfigured" path (503 not_configured) rather than a second one
 * discovered while checking the first signature.
 */
export function loadIngestConfig(env: Env): IngestConfig {
  return Settings.load(env, (settings) => {
    const signingSecret = settings.value('WEBHOOK_SIGNING_SECRET');
    if (signingSecret) {
      try {
        // The key is the base64 after whsec_ (lib/inbound/signature.ts): its decoded bytes are what a guesser must find.
        const key = signingKey(signingSecret);
        settings.expect(
          key.length >= MIN_HMAC_KEY_BYTES,
          weakSecretProblem('WEBHOOK_SIGNING_SECRET', MIN_HMAC_KEY_BYTES, 'bytes of key (the base64 after whsec_, decoded)'),
        );
      } catch (error) {
        if (!(error instanceof InvalidSigningSecretError)) throw error;
        // Never the value: a near-miss secret is most of the secret.
        settings.expect(false, 'WEBHOOK_SIGNING_SECRET must be whsec_<base64> (or bare base64) with a non-empty key');
      }
    }
    const { qualifyEvent, revokeEvent } = qualificationSettings(settings);
    return {
      ...(qualifyEvent && { qualifyEvent }),
      ...(revokeEvent && { revokeEvent }),
      webhookSecret: settings.secret('WEBHOOK_SECRET'),
      webhookSigningSecret: signingSecret,
      referralEvent: settings.value('REFERRAL_EVENT'),
      referrerEmailProperty: settings.value('REFERRER_EMAIL_PROPERTY'),
      redeemerEmailProperty: settings.value('REDEEMER_EMAIL_PROPERTY'),
      queueUrl: settings.required('QUEUE_URL'),
    };
  });
}

// Shopify rejects gift cards above $2,000 from the API; a typo like "2500" should fail at start, not per card.
function rewardAmount(settings: Settings): string {
  const amount = settings.value('REWARD_AMOUNT');
  if (!/^\d{1,4}(\.\d{1,2})?$/.test(amount)) settings.expect(false, 'REWARD_AMOUNT must be a decimal like 25.00');
  else settings.expect(Number(amount) > 0 && Number(amount) <= 2000, 'REWARD_AMOUNT must be more than 0 and at most 2000');
  return amount;
}

/**
 * SHOPIFY_ACCESS_TOKEN (an admin-created app's static token), or SHOPIFY_CLIENT_ID with
 * SHOPIFY_CLIENT_SECRET (a Dev Dashboard app: tokens by the client credentials grant). Both at
 * once is refused rather than guessed at: the wrong guess would fail every referral quietly.
 */
function shopifyAuth(settings: Settings): ShopifyAuthConfig {
  const accessToken = settings.value('SHOPIFY_ACCESS_TOKEN');
  const clientId = settings.value('SHOPIFY_CLIENT_ID');
  const clientSecret = settings.value('SHOPIFY_CLIENT_SECRET');
  if (accessToken && (clientId || clientSecret)) {
    settings.expect(false, 'set SHOPIFY_ACCESS_TOKEN or SHOPIFY_CLIENT_ID/SHOPIFY_CLIENT_SECRET, not both');
  } else if (clientId || clientSecret) {
    settings.expect(Boolean(clientId), 'SHOPIFY_CLIENT_ID is not set (SHOPIFY_CLIENT_SECRET is; a Dev Dashboard app needs both)');
    settings.expect(Boolean(clientSecret), 'SHOPIFY_CLIENT_SECRET is not set (SHOPIFY_CLIENT_ID is; a Dev Dashboard app needs both)');
    return { mode: 'client_credentials', clientId: clientId ?? '', clientSecret: clientSecret ?? '' };
  }
  settings.expect(
    Boolean(accessToken),
    'SHOPIFY_ACCESS_TOKEN is not set (or, for a Dev Dashboard app, SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET)',
  );
  return { mode: 'static', accessToken: accessToken ?? '' };
}

/** The shop, its API version and its credentials: the worker's, and the ops commands' that call Shopify (revoke). */
function shopifySettings(settings: Settings): WorkerConfig['shopify'] {
  // People paste the admin URL; accept it and keep only the host (no scheme, no path).
  const storeDomain = settings.value('SHOPIFY_STORE_DOMAIN')?.replace(/^https?:\/\/|\/.*$/gi, '');
  const shopifyUrl = settings.required(
    'SHOPIFY_STORE_DOMAIN (or SHOPIFY_BASE_URL)',
    settings.value('SHOPIFY_BASE_URL') ?? (storeDomain ? `https://${storeDomain}` : ''),
  );
  const apiVersion = settings.value('SHOPIFY_API_VERSION');
  settings.expect(/^\d{4}-\d{2}$|^unstable$/.test(apiVersion), 'SHOPIFY_API_VERSION must look like 2026-10');
  return { baseUrl: shopifyUrl && settings.url('SHOPIFY_BASE_URL', shopifyUrl), apiVersion, auth: shopifyAuth(settings) };
}

/**
 * REFERRAL_SIGNATURES (`required` by default, or `off`) and, when required, REFERRAL_SIGNING_KEY
 * (from the worker's secret). A missing or short key is refused here, before any referral is
 * judged: judged without it, every genuine referral would be REJECTED for good.
 */
function referralSignatures(settings: Settings): ReferralSignatures {
  const mode = settings.value('REFERRAL_SIGNATURES').toLowerCase();
  if (mode === 'off') return { mode: 'off' };
  settings.expect(mode === 'required', 'REFERRAL_SIGNATURES must be required or off');
  // Never the value, nor its length: a near-miss key is most of the key.
  const longEnough = (name: string, key: string): void =>
    settings.expect(Buffer.byteLength(key) >= MIN_SIGNING_KEY_BYTES, `${name} must be at least ${MIN_SIGNING_KEY_BYTES} bytes`);
  const key = settings.value('REFERRAL_SIGNING_KEY') ?? '';
  settings.expect(
    key !== '',
    "REFERRAL_SIGNING_KEY is not set (the key the app's backend signs referrals with; REFERRAL_SIGNATURES=off pays unsigned ones)",
  );
  if (key) longEnough('REFERRAL_SIGNING_KEY', key);
  // The key being rotated out, accepted beside the new one while referrals it signed are in flight.
  const previousKey = settings.value('REFERRAL_SIGNING_KEY_PREVIOUS');
  if (previousKey !== undefined) {
    longEnough('REFERRAL_SIGNING_KEY_PREVIOUS', previousKey);
    settings.expect(previousKey !== key, 'REFERRAL_SIGNING_KEY_PREVIOUS must differ from REFERRAL_SIGNING_KEY');
  }
  return { mode: 'required', key, ...(previousKey && { previousKey }) };
}

/** Customer.io refuses an event name over its limit (lib/domain/limits.ts): refused at start, before any card exists. */
function fitsCustomerIo(settings: Settings, name: string, eventName: string): void {
  settings.expect(
    Buffer.byteLength(eventName) <= CUSTOMERIO_MAX_EVENT_NAME_BYTES,
    `${name} must be at most ${CUSTOMERIO_MAX_EVENT_NAME_BYTES} bytes (Customer.io's limit)`,
  );
}

/**
 * CUSTOMERIO_STATUS_EVENT, or undefined when unset or empty (no status is told). The fulfilment
 * event's name is refused: every status would start the campaign that mails the codes.
 */
function statusEventName(settings: Settings): string | undefined {
  const name = settings.value('CUSTOMERIO_STATUS_EVENT');
  if (name !== undefined) {
    fitsCustomerIo(settings, 'CUSTOMERIO_STATUS_EVENT', name);
    settings.expect(name !== settings.value('CUSTOMERIO_EVENT'), 'CUSTOMERIO_STATUS_EVENT must differ from CUSTOMERIO_EVENT');
  }
  return name;
}

function customerIoSettings(settings: Settings): CustomerIoConfig {
  const region = settings.value('CUSTOMERIO_REGION').toLowerCase();
  const eventName = settings.value('CUSTOMERIO_EVENT');
  fitsCustomerIo(settings, 'CUSTOMERIO_EVENT', eventName);
  const statusEvent = statusEventName(settings);
  const regionUrl = region === 'eu' ? 'https://track-eu.customer.io' : 'https://track.customer.io';
  return {
    trackUrl: settings.url('CUSTOMERIO_TRACK_URL', settings.value('CUSTOMERIO_TRACK_URL') ?? regionUrl),
    siteId: settings.required('CUSTOMERIO_SITE_ID'),
    apiKey: settings.required('CUSTOMERIO_API_KEY'),
    eventName,
    ...(statusEvent && { statusEvent }),
  };
}

/**
 * Customer.io's settings alone: the releaser reads them (from the worker's secret in AWS) when it
 * tells a status, so it needs no Shopify setting.
 */
export const loadCustomerIoConfig = (env: Env): CustomerIoConfig => Settings.load(env, customerIoSettings);

/** Where outcomes are captured: POSTHOG_HOST, with POSTHOG_API_KEY (the worker's secret). */
export type PostHogCaptureConfig = Pick<PostHogCaptureOptions, 'host' | 'apiKey'>;

function posthogCaptureSettings(settings: Settings): PostHogCaptureConfig | undefined {
  const apiKey = settings.value('POSTHOG_API_KEY');
  return apiKey ? { host: settings.url('POSTHOG_HOST'), apiKey } : undefined;
}

/** PostHog's capture settings alone, as the worker reads them (the releaser's captures); undefined without POSTHOG_API_KEY. */
export const loadPostHogCaptureConfig = (env: Env): PostHogCaptureConfig | undefined => Settings.load(env, posthogCaptureSettings);

export const loadShopifyConfig = (env: Env): WorkerConfig['shopify'] => Settings.load(env, shopifySettings);

export function loadWorkerConfig(env: Env): WorkerConfig {
  return Settings.load(env, (settings) => {
    const rewardType = settings.value('REWARD_TYPE').toLowerCase() as RewardType;
    settings.expect(REWARD_TYPES.includes(rewardType), 'REWARD_TYPE must be gift_card or discount_code');
    const expiresDays = settings.value('REWARD_EXPIRES_DAYS');
    const lifecycle = lifecycleSettings(settings);
    return {
      rewardAmount: rewardAmount(settings),
      rewardCodeLength: settings.integer('REWARD_CODE_LENGTH', MIN_CODE_LENGTH, MAX_CODE_LENGTH, `${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}`),
      shopify: shopifySettings(settings),
      customerio: customerIoSettings(settings),
      rewardType,
      rules: {
        // The referrer's item lists the referrals holding its slots (lib/adapters/dynamodb/ledger.ts): bounded well inside 400 KB.
        maxRewardsPerReferrer: settings.integer('MAX_REWARDS_PER_REFERRER', 0, 1_000, 'a whole number from 0 (no cap) to 1000'),
        blockedDomains: parseDomainList(env.BLOCKED_EMAIL_DOMAINS),
        referralSignatures: referralSignatures(settings),
      },
      rewardExpiresDays: expiresDays
        ? settings.integer('REWARD_EXPIRES_DAYS', 1, 3650, 'a whole number of days from 1 to 3650 (unset it for rewards that never expire)')
        : undefined,
      posthog: posthogCaptureSettings(settings),
      lifecycle,
      requireReferralCode: settings.flag('REQUIRE_REFERRAL_CODE'),
      sharedSignalQuery: sharedSignalQuerySettings(settings, lifecycle),
      qualification: qualificationSettings(settings),
    };
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
  /** The queue the worker reads: a failed record's next delivery is set on it (lib/infra/redelivery.ts). */
  queueUrl: string;
  /** The queue's visibility timeout, seconds: the longest a failed record waits before it is delivered again. */
  visibilityTimeoutSeconds: number;
  /** The event source mapping's maximumConcurrency: this container's Shopify pacer takes 1 / this of the shop's budget. */
  workerContainers: number;
}

export function loadWorkerRuntimeConfig(env: Env): WorkerRuntimeConfig {
  return Settings.load(env, (settings) => {
    const dry = dryRun(settings);
    return {
      tableName: settings.required('TABLE_NAME'),
      deadLetterQueueUrl: settings.required('DLQ_URL'),
      // SQS's redrive policy takes 1 to 1,000 (aws-cdk-lib's aws-sqs validateQueueProps checks the same range). "5x" must
      // not become NaN: the retries_exhausted branch compares against it and would never fire.
      maxReceiveCount: settings.integer(
        'MAX_RECEIVE_COUNT',
        1,
        1000,
        "a whole number from 1 to 1000 (the queue's redrive maxReceiveCount)",
      ),
      dryRun: dry,
      queueUrl: settings.required('QUEUE_URL'),
      // ChangeMessageVisibility takes 0 to 43,200 s (12 hours), as does the queue's own VisibilityTimeout.
      visibilityTimeoutSeconds: settings.integer(
        'QUEUE_VISIBILITY_TIMEOUT',
        0,
        43_200,
        "a whole number of seconds from 0 to 43200 (the queue's VisibilityTimeout)",
      ),
      workerContainers: settings.integer(
        'WORKER_MAX_CONCURRENCY',
        1,
        1000,
        'a whole number from 1 to 1000 (the event source mapping maximumConcurrency)',
      ),
    };
  });
}

/** The releaser's settings (functions/release.ts). */
export interface ReleaserConfig {
  tableName: string;
  queueUrl: string;
  /** CUSTOMERIO_STATUS_EVENT: when set, the releaser tells the statuses it reaches (Customer.io's credentials are read when it does). */
  statusEvent?: string;
  /** QUALIFY_EVENT: set, the releaser's expiries are captured (not_qualified) with the worker's PostHog key. */
  qualifyEvent?: string;
  /** REVOKE_PAID=true: a refund's revoke of a paid referral is finished by the releaser (the worker's Shopify credentials). */
  revokePaid?: true;
}

export function loadReleaserConfig(env: Env): ReleaserConfig {
  return Settings.load(env, (settings) => {
    const statusEvent = statusEventName(settings);
    const qualifyEvent = settings.value('QUALIFY_EVENT');
    const revokePaid = settings.flag('REVOKE_PAID');
    return {
      tableName: settings.required('TABLE_NAME'),
      queueUrl: settings.required('QUEUE_URL'),
      ...(statusEvent && { statusEvent }),
      ...(qualifyEvent && { qualifyEvent }),
      ...(revokePaid && { revokePaid }),
    };
  });
}

/**
 * The service name and metrics namespace every function logs and publishes under, with our
 * defaults. The log level and the metrics switches are read where they act
 * (lib/infra/observability.ts), with Powertools' names and precedence.
 */
export function loadObservabilityConfig(env: Env): { serviceName: string; metricsNamespace: string } {
  return {
    serviceName: env.POWERTOOLS_SERVICE_NAME?.trim() || 'referral-rewards',
    metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE?.trim() || 'ReferralRewards',
  };
}
