/**
 * Each function's dependencies, built from its validated config and nothing else: the worker
 * (`createWorkerDeps`), the releaser (`releaserDeps`) and the reconciler (`reconcileDeps`). The
 * handlers in functions/, `npm start` (local/), the tests and the bench all build through here, so
 * a dependency added here reaches the deployed function, the tests and the bench alike: a
 * hand-made copy elsewhere would test a function that is not the one deployed.
 *
 * Every function's bundle keeps only its own part: the others' builders and the adapters only
 * they call are tree-shaken to nothing (tests/unit/worker-import-graph.test.ts; the worker's IAM
 * role is checked against what is left, tests/integration/packaging.test.ts). So import from a
 * module with top-level work (a zod schema, a CommonJS package) by type only.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { generateCode } from '../domain/codes';
import type { ReconcilerConfig, ReleaserConfig, WorkerConfig, WorkerRuntimeConfig } from './config';
import { CustomerIoClient } from '../adapters/customerio';
import type { Fetch } from './http';
import { Ledger, type LedgerPort } from '../adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../adapters/dynamodb/lifecycle-index';
import { personEventsInLedger, referralsInLedger } from '../adapters/dynamodb/reconciler-ledger';
import { queueSender } from '../adapters/sqs/queue';
import type { FulfilDeps } from '../domain/rewards';
import type { ReleaserDeps } from '../domain/lifecycle/release';
// Types only: a value import would bring the webhook's parser (and zod) into the worker's bundle.
import type { ReconcileDeps, ReconcileLogger, ReconcileOptions, ReconcileWindow } from '../domain/reconcile';
import { discountCodeIssuer } from '../adapters/shopify/discount-codes';
import { PostHogCapture } from '../adapters/posthog-capture';
import { giftCardIssuer } from '../adapters/shopify/gift-cards';
import { ShopifyPacer } from '../adapters/shopify/pacing';
import { ShopifyTransport } from '../adapters/shopify/transport';
import { tokenProviderFor, type ShopifyTokenProvider } from '../adapters/shopify/auth';
import { ulidFromUuid } from './ulid';
import { PostHogEventsQuery, PostHogSharedSignals } from '../adapters/posthog-query';
import { metrics, MetricUnit, type ScopedLogger } from './observability';
import type { RetryOptions } from './retry';

// ── The worker ──────────────────────────────────────────────────────────────────────────────

/**
 * Test and bench seams: any dependency, the fetch every client uses, `shopifyPacer` (false for
 * unpaced Shopify requests, or a pacer the caller watches), and `shopifyAuth` for a token provider
 * that outlives these deps.
 */
export type FulfilOverrides = Partial<FulfilDeps> & {
  fetch?: Fetch;
  shopifyPacer?: ShopifyPacer | false;
  shopifyAuth?: ShopifyTokenProvider;
  /** This container's part of the shop's Shopify budget (1 / the worker's maximum concurrency: lib/infra/shop-sizing.ts). */
  shopifyPacerShare?: number;
};

/** Builds the fulfilment dependencies from a validated config. Clients are cheap objects; callers cache the result. */
export function createFulfilDeps(config: WorkerConfig, ledger: Ledger, overrides: FulfilOverrides = {}): FulfilDeps {
  const { fetch: fetchImpl, shopifyPacer, shopifyAuth, shopifyPacerShare, ...rest } = overrides;
  const { baseUrl, apiVersion } = config.shopify;
  const transport = new ShopifyTransport({
    baseUrl,
    apiVersion,
    auth: shopifyAuth ?? tokenProviderFor(baseUrl, config.shopify.auth, { fetch: fetchImpl }),
    fetch: fetchImpl,
    pacer: shopifyPacer ?? new ShopifyPacer({ share: shopifyPacerShare ?? 1 }),
  });
  // Both issuers, one transport (one token, one pacer): a referral begun under the other REWARD_TYPE is finished the way it began.
  const issuers = { gift_card: giftCardIssuer(transport), discount_code: discountCodeIssuer(transport) };
  return {
    ledger,
    shopify: issuers[config.rewardType],
    issuers,
    rewardType: config.rewardType,
    customerio: new CustomerIoClient({ ...config.customerio, fetch: fetchImpl }),
    rewardAmount: config.rewardAmount,
    customerioEvent: config.customerio.eventName,
    newCode: () => generateCode(config.rewardCodeLength),
    customerioEventId: (eventId) => ulidFromUuid(eventId),
    rules: config.rules,
    rewardExpiresDays: config.rewardExpiresDays,
    posthog: config.posthog ? new PostHogCapture({ ...config.posthog, fetch: fetchImpl }) : undefined,
    // Always wired, even with every lifecycle setting off: a referral parked under earlier settings must still be released.
    lifecycle: {
      config: config.lifecycle,
      ledger,
      ...(config.sharedSignalQuery ? { sharedSignals: new PostHogSharedSignals({ ...config.sharedSignalQuery, fetch: fetchImpl }) } : {}),
    },
    referralCodes: { store: ledger.codes, required: config.requireReferralCode },
    qualification: config.qualification,
    ...rest,
  };
}

/**
 * The fulfilment dependencies per invocation: the config (and the cached secret) re-read each
 * time, the clients rebuilt only when it changed, so per-container state (the Shopify pacer, the
 * shop's currency) survives from one invocation to the next. The Shopify token survives even a
 * change of unrelated settings: it is kept per shop and credentials, so a container asks for one
 * token a day, not one per config change.
 */
export function cachedFulfilDeps(
  loadConfig: () => Promise<WorkerConfig>,
  ledger: Ledger,
  overrides: FulfilOverrides = {},
): () => Promise<FulfilDeps> {
  let cached: { key: string; deps: FulfilDeps } | undefined;
  let tokens: { key: string; provider: ShopifyTokenProvider } | undefined;
  return async () => {
    const config = await loadConfig();
    const key = JSON.stringify(config);
    if (cached?.key !== key) {
      const { baseUrl, auth } = config.shopify;
      const tokenKey = JSON.stringify([baseUrl, auth]);
      if (tokens?.key !== tokenKey) tokens = { key: tokenKey, provider: tokenProviderFor(baseUrl, auth, { fetch: overrides.fetch }) };
      cached = { key, deps: createFulfilDeps(config, ledger, { shopifyAuth: tokens.provider, ...overrides }) };
    }
    return cached.deps;
  };
}

export interface WorkerDeps {
  sqs: SQSClient;
  ledger: LedgerPort;
  deadLetterQueueUrl: string;
  /** The queue records come from: a failed record's next delivery is set there (ChangeMessageVisibility). */
  queueUrl: string;
  /** The queue's visibility timeout, seconds: no failed record is made to wait longer (lib/infra/redelivery.ts). */
  visibilityTimeoutSeconds: number;
  /** The queue's redrive maxReceiveCount: on the last receive a retryable failure is recorded as FAILED. */
  maxReceiveCount: number;
  /** May throw PermanentError (bad config → DLQ) or RetryableError (Secrets Manager down). */
  fulfilDeps: () => Promise<FulfilDeps>;
  /** DRY_RUN: log what would be done, call nothing external, write nothing to the ledger, park in the DLQ as dry_run (lib/domain/dry-run.ts). */
  dryRun?: boolean;
}

/** What the worker talks through, built once per container by the caller. */
export interface WorkerClients {
  sqs: SQSClient;
  ddb: DynamoDBDocumentClient;
  /** The fetch every HTTP client (Shopify, Customer.io, PostHog) uses; the global one by default. */
  fetch?: Fetch;
  /** The clock fulfilment dates with (reward expiry, Customer.io timestamp); leases keep real time. */
  now?: () => number;
}

/** Seams for the test harness and the bench; the deployed worker passes none. */
export interface WorkerWiringOptions {
  /** Any fulfilment dependency (checkpoint, newCode, an unpaced Shopify client). */
  fulfil?: FulfilOverrides;
  /** Wraps the ledger the worker uses (fulfilment and the handler's own fail/release), e.g. to fail one call or crash. */
  wrapLedger?: (ledger: Ledger) => Ledger;
  /** Shorter backoff steps for tests; the policy's shape (attempts, deadline, Retry-After floor) stays the production one. */
  retryBackoff?: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>;
}

/**
 * The worker's dependencies: the ledger on `runtime.tableName`, and fulfilment deps that re-read
 * `loadConfig` per invocation (secret rotation) but rebuild clients only when it changed, so the
 * Shopify pacer, token and shop currency live as long as the container (`cachedFulfilDeps`).
 */
export function createWorkerDeps(
  runtime: WorkerRuntimeConfig,
  loadConfig: () => Promise<WorkerConfig>,
  clients: WorkerClients,
  options: WorkerWiringOptions = {},
): WorkerDeps {
  const ledger = new Ledger(clients.ddb, runtime.tableName);
  const fulfilLedger = options.wrapLedger ? options.wrapLedger(ledger) : ledger;
  const fulfilDeps = cachedFulfilDeps(loadConfig, fulfilLedger, {
    ...(options.retryBackoff ? { retry: { ...options.retryBackoff } } : {}),
    ...(clients.fetch ? { fetch: clients.fetch } : {}),
    ...(clients.now ? { now: clients.now } : {}),
    // Containers do not share a pacer: each takes its part of the shop's budget (lib/infra/shop-sizing.ts).
    shopifyPacerShare: 1 / runtime.workerContainers,
    ...options.fulfil,
  });
  return {
    sqs: clients.sqs,
    // The wrapped one here too: a simulated crash must also skip the handler's own bookkeeping.
    ledger: fulfilLedger,
    deadLetterQueueUrl: runtime.deadLetterQueueUrl,
    queueUrl: runtime.queueUrl,
    visibilityTimeoutSeconds: runtime.visibilityTimeoutSeconds,
    maxReceiveCount: runtime.maxReceiveCount,
    dryRun: runtime.dryRun,
    fulfilDeps,
  };
}

/**
 * The retry policy of one record's steps: withRetry's (lib/infra/retry.ts: full-jitter backoff, at most
 * 8 attempts, never past the deadline) with the wiring's backoff, each retry counted (StepRetry)
 * and logged under the record's ids. Assembled here and nowhere else.
 */
export function stepRetry(policy: FulfilDeps['retry'], log: ScopedLogger): NonNullable<FulfilDeps['retry']> {
  return {
    ...policy,
    onRetry: (error, attempt, delayMs) => {
      metrics.addMetric('StepRetry', MetricUnit.Count, 1);
      log.warn('retrying a step', { attempt, delayMs: Math.round(delayMs), error: error.message });
    },
  };
}

// ── The releaser ────────────────────────────────────────────────────────────────────────────

/** The releaser's dependencies from its validated config: functions/release.ts and `npm start` (local/start.ts) share this. */
export function releaserDeps(
  config: ReleaserConfig,
  clients: { sqs: SQSClient; ddb: DynamoDBDocumentClient },
  options: Pick<ReleaserDeps, 'resendAfterMs' | 'now' | 'posthog' | 'status'> = {},
): ReleaserDeps {
  return {
    ledger: new Ledger(clients.ddb, config.tableName),
    index: new LifecycleIndexReader(clients.ddb, config.tableName),
    enqueue: queueSender(clients.sqs, config.queueUrl),
    ...options,
  };
}

// ── The reconciler ──────────────────────────────────────────────────────────────────────────

export type EnabledReconcilerConfig = Extract<ReconcilerConfig, { enabled: true }>;

export interface ReconcileClients {
  sqs: SQSClient;
  ddb: DynamoDBDocumentClient;
  log: ReconcileLogger;
  fetch?: Fetch;
  /** Overrides the config's table and queue (ops targets name their own). */
  tableName?: string;
  queueUrl?: string;
}

/** The reconciler's dependencies from a validated config: the Lambda, `npm start` and `ops reconcile` share this. */
export function reconcileDeps(config: EnabledReconcilerConfig, clients: ReconcileClients): ReconcileDeps {
  const tableName = clients.tableName ?? config.tableName;
  const queueUrl = clients.queueUrl ?? config.queueUrl;
  return {
    source: new PostHogEventsQuery({ ...config.posthog, fetch: clients.fetch }),
    inLedger: (eventIds) => referralsInLedger(clients.ddb, tableName, eventIds),
    personEventsInLedger: (eventIds) => personEventsInLedger(clients.ddb, tableName, eventIds),
    // The same message ingest queues: the worker cannot tell a reconciled referral from a webhooked one.
    enqueue: queueSender(clients.sqs, queueUrl),
    log: clients.log,
  };
}

/** Options for one run over `window` (the scheduled one is `slidingWindow` in lib/domain/reconcile.ts); a DRY_RUN stage's run is a dry run. */
export function reconcileOptions(
  config: EnabledReconcilerConfig,
  window: ReconcileWindow,
  overrides: { dryRun?: boolean; pageSize?: number } = {},
): ReconcileOptions {
  return {
    referralEvent: config.referralEvent,
    referrerEmailProperty: config.referrerEmailProperty,
    redeemerEmailProperty: config.redeemerEmailProperty,
    window,
    qualifyEvent: config.personEvents.qualifyEvent,
    revokeEvent: config.personEvents.revokeEvent,
    catchUp: { ...config.personEvents, referralsFrom: config.from },
    dryRun: overrides.dryRun || config.dryRun,
    pageSize: overrides.pageSize,
  };
}
