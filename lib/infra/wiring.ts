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
import type { CustomerIoConfig, PostHogCaptureConfig, ReconcilerConfig, ReleaserConfig, WorkerConfig, WorkerRuntimeConfig } from './config';
import { CustomerIoClient, CustomerIoStatusSender } from '../adapters/customerio';
import type { Fetch } from './http';
import { Ledger, type LedgerPort } from '../adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../adapters/dynamodb/lifecycle-index';
import { personEventsInLedger, referralsInLedger } from '../adapters/dynamodb/reconciler-ledger';
import { queueSender } from '../adapters/sqs/queue';
import type { FulfilDeps } from '../domain/rewards';
import type { ReleaserDeps } from '../domain/lifecycle/release';
import type { RewardDeactivator } from '../domain/lifecycle/revoke';
import type { OutcomeTracker } from '../domain/notify-ports';
import type { StatusFailure } from '../domain/announce';
import type { StatusSender } from '../domain/status';
import type { ReconcileDeps, ReconcileLogger, ReconcileOptions, ReconcileWindow } from '../domain/reconcile';
import { discountCodeIssuer } from '../adapters/shopify/discount-codes';
// The releaser's only (a refund's revoke): tree-shaken out of the worker's bundle, which never deactivates.
import { deactivateReward } from '../adapters/shopify/deactivation';
import { PostHogCapture } from '../adapters/posthog-capture';
import { giftCardIssuer } from '../adapters/shopify/gift-cards';
import { ShopifyPacer } from '../adapters/shopify/pacing';
import { ShopifyTransport } from '../adapters/shopify/transport';
import { tokenProviderFor, type ShopifyAuthConfig } from '../adapters/shopify/auth';
import { redactText } from './mask';
import { ulidFromUuid } from './ulid';
import { PostHogEventsQuery, PostHogSharedSignals } from '../adapters/posthog-query';
import { count, scopedLogger, type ScopedLogger } from './observability';

// ── The worker ──────────────────────────────────────────────────────────────────────────────

/** What fulfilment's HTTP clients send with, beside the config. */
export interface FulfilClients {
  /** The fetch every HTTP client (Shopify, Customer.io, PostHog) uses; the global one by default. */
  fetch?: Fetch;
  /** The clock fulfilment dates with (reward expiry, Customer.io timestamp); leases keep real time. */
  now?: () => number;
}

/**
 * The fulfilment dependencies for one validated config, on the adapters given: the ledger and the
 * one Shopify transport both issuers share (one token, one pacer).
 */
export function createFulfilDeps(
  config: WorkerConfig,
  adapters: { ledger: Ledger; shopify: ShopifyTransport },
  clients: FulfilClients = {},
): FulfilDeps {
  const { ledger, shopify: transport } = adapters;
  const { fetch: fetchImpl, now } = clients;
  // Both issuers, one transport: a referral begun under the other REWARD_TYPE is finished the way it began.
  const issuers = { gift_card: giftCardIssuer(transport), discount_code: discountCodeIssuer(transport) };
  const customerio = new CustomerIoClient({ ...config.customerio, fetch: fetchImpl });
  const { statusEvent } = config.customerio;
  return {
    ledger,
    shopify: issuers[config.rewardType],
    issuers,
    rewardType: config.rewardType,
    customerio,
    ...(statusEvent ? { status: new CustomerIoStatusSender(customerio, statusEvent, now) } : {}),
    rewardAmount: config.rewardAmount,
    customerioEvent: config.customerio.eventName,
    newCode: () => generateCode(config.rewardCodeLength),
    customerioEventId: ulidFromUuid,
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
    ...(now ? { now } : {}),
  };
}

/** `build` as a function that builds again only when its input (compared as JSON) changed since the last call. */
function rebuiltOnChange<I, O>(build: (input: I) => O): (input: I) => O {
  let last: { key: string; built: O } | undefined;
  return (input) => {
    const key = JSON.stringify(input);
    if (last?.key !== key) last = { key, built: build(input) };
    return last.built;
  };
}

/**
 * One container's fulfilment dependencies for each config it meets: its ledger and its Shopify
 * pacer (its part of the shop's budget) for as long as it lives, and the Shopify token kept per
 * shop and credentials, so a container asks for one token a day, not one per config change.
 */
export function containerFulfilDeps(
  ledger: Ledger,
  pacer: ShopifyPacer | false,
  clients: FulfilClients = {},
): (config: WorkerConfig) => FulfilDeps {
  const { fetch } = clients;
  const tokens = rebuiltOnChange(([baseUrl, auth]: [string, ShopifyAuthConfig]) => tokenProviderFor(baseUrl, auth, { fetch }));
  return (config) => {
    const { baseUrl, apiVersion, auth } = config.shopify;
    const shopify = new ShopifyTransport({ baseUrl, apiVersion, auth: tokens([baseUrl, auth]), fetch, pacer });
    return createFulfilDeps(config, { ledger, shopify }, clients);
  };
}

/**
 * The fulfilment dependencies per invocation: the config (and the cached secret) re-read each
 * time, the dependencies rebuilt by `build` only when it changed, so the clients (and the shop's
 * currency they learnt) survive from one invocation to the next.
 */
export function cachedFulfilDeps(
  loadConfig: () => Promise<WorkerConfig>,
  build: (config: WorkerConfig) => FulfilDeps,
): () => Promise<FulfilDeps> {
  const deps = rebuiltOnChange(build);
  return async () => deps(await loadConfig());
}

/** The handler's dependencies; its queue settings are the runtime's (WorkerRuntimeConfig). */
export interface WorkerDeps extends Pick<
  WorkerRuntimeConfig,
  'deadLetterQueueUrl' | 'queueUrl' | 'visibilityTimeoutSeconds' | 'maxReceiveCount'
> {
  sqs: SQSClient;
  ledger: LedgerPort;
  /** May throw PermanentError (bad config → DLQ) or RetryableError (Secrets Manager down). */
  fulfilDeps: () => Promise<FulfilDeps>;
  /** DRY_RUN: log what would be done, call nothing external, write nothing to the ledger, park in the DLQ as dry_run (lib/domain/dry-run.ts). */
  dryRun?: boolean;
}

/** The AWS clients a function talks through, built once per container by the caller. */
interface AwsClients {
  sqs: SQSClient;
  ddb: DynamoDBDocumentClient;
}

/** The worker's dependencies: the ledger on `runtime.tableName`, fulfilment's through `cachedFulfilDeps` and `containerFulfilDeps`. */
export function createWorkerDeps(
  runtime: WorkerRuntimeConfig,
  loadConfig: () => Promise<WorkerConfig>,
  clients: AwsClients & FulfilClients,
): WorkerDeps {
  const ledger = new Ledger(clients.ddb, runtime.tableName);
  // Containers do not share a pacer: each takes its part of the shop's budget (lib/infra/shop-sizing.ts).
  const pacer = new ShopifyPacer({ share: 1 / runtime.workerContainers });
  return workerDepsFrom(runtime, {
    sqs: clients.sqs,
    ledger,
    fulfilDeps: cachedFulfilDeps(loadConfig, containerFulfilDeps(ledger, pacer, clients)),
  });
}

/**
 * The worker's dependencies from its parts: `createWorkerDeps` builds them from the config; the
 * test harness and the bench build their own (a ledger that crashes on cue, a pacer they watch).
 * The handler's own bookkeeping (fail, release) goes through the same ledger as fulfilment.
 */
export function workerDepsFrom(runtime: WorkerRuntimeConfig, parts: Pick<WorkerDeps, 'sqs' | 'ledger' | 'fulfilDeps'>): WorkerDeps {
  return { ...runtime, ...parts };
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
      count('StepRetry');
      log.warn('retrying a step', { attempt, delayMs: Math.round(delayMs), error: error.message });
    },
  };
}

/**
 * What the worker and the releaser do with a status Customer.io refused for good
 * (lib/domain/announce.ts): counted (StatusAnnouncementsFailed) and logged with the referral's id
 * and the sender's reason; its message names no email (the adapter redacts them), masked again here.
 */
export function statusFailureReport(log: ScopedLogger): (failure: StatusFailure) => void {
  return (failure) => {
    count('StatusAnnouncementsFailed');
    log.error('status announcement refused; the referral goes on without it', {
      referral: failure.eventId,
      status: failure.status,
      reason: failure.reason,
      error: redactText(failure.message),
    });
  };
}

// ── The releaser ────────────────────────────────────────────────────────────────────────────

/**
 * The releaser's dependencies from its validated config: functions/release.ts and `npm start`
 * (local/start.ts) share this. What it needs from the worker's secret (Customer.io for statuses,
 * PostHog for captures, Shopify for a refund's revoke) is read only when used, and wired only
 * when a setting makes the releaser use it.
 */
export function releaserDeps(
  config: ReleaserConfig,
  clients: ReleaserClients,
  options: Pick<ReleaserDeps, 'resendAfterMs' | 'now' | 'posthog'> = {},
): ReleaserDeps {
  // Expiry captures not_qualified (QUALIFY_EVENT); a refund's revoke captures revoked (REVOKE_PAID).
  const captures = Boolean(config.qualifyEvent || config.revokePaid);
  return {
    ledger: new Ledger(clients.ddb, config.tableName),
    index: new LifecycleIndexReader(clients.ddb, config.tableName),
    enqueue: queueSender(clients.sqs, config.queueUrl),
    ...(config.statusEvent ? { status: statusSenderReading(config.statusEvent, clients, options.now) } : {}),
    onStatusFailed: statusFailureReport(scopedLogger({})),
    ...(captures && clients.posthog ? { posthog: outcomeTrackerReading(clients.posthog, clients.fetch) } : {}),
    ...(config.revokePaid && clients.shopify ? { shopify: deactivatorReading(clients.shopify, clients.fetch) } : {}),
    ...options,
  };
}

/**
 * What the releaser talks through. The readers return the worker's settings (its secret in AWS,
 * cached by the loader) and are called only when a status is told, an outcome captured or a reward
 * deactivated, so a releaser that never does one never reads them.
 */
export interface ReleaserClients extends AwsClients {
  customerio: () => Promise<CustomerIoConfig>;
  /** POSTHOG_API_KEY and POSTHOG_HOST; undefined without a key (nothing is captured, as in the worker). */
  posthog?: () => Promise<PostHogCaptureConfig | undefined>;
  /** The shop and the worker's Shopify credentials, for a refund's revoke (REVOKE_PAID). */
  shopify?: () => Promise<WorkerConfig['shopify']>;
  fetch?: Fetch;
}

/** A status sender that reads Customer.io's credentials at each send, so a rotated key is picked up. */
function statusSenderReading(eventName: string, clients: ReleaserClients, now?: () => number): StatusSender {
  return {
    async sendStatus(message) {
      const client = new CustomerIoClient({ ...(await clients.customerio()), fetch: clients.fetch });
      await new CustomerIoStatusSender(client, eventName, now).sendStatus(message);
    },
  };
}

/** An outcome tracker that reads PostHog's key at each capture, as the status sender reads Customer.io's; none, none captured. */
function outcomeTrackerReading(read: NonNullable<ReleaserClients['posthog']>, fetch?: Fetch): OutcomeTracker {
  return {
    async track(capture) {
      const config = await read();
      if (config) await new PostHogCapture({ ...config, fetch }).track(capture);
    },
  };
}

/**
 * The part of the shop's Shopify budget the releaser's pacer takes: the workers' pacers take all
 * of it between them (lib/infra/shop-sizing.ts) and see this as someone else's spending, so it
 * yields to them; a tenth of a standard shop's 100 points/s still deactivates a reward a second.
 */
const RELEASER_SHOPIFY_SHARE = 0.1;

/**
 * Deactivates rewards through one Shopify transport built from the settings read at each call
 * (kept while they stay the same, so the token and the pacer's reading of the bucket outlive a
 * run, as the worker's do), with the deactivation ops/ uses.
 */
function deactivatorReading(read: NonNullable<ReleaserClients['shopify']>, fetch?: Fetch): RewardDeactivator {
  const pacer = new ShopifyPacer({ share: RELEASER_SHOPIFY_SHARE });
  const transport = rebuiltOnChange(
    ({ baseUrl, apiVersion, auth }: WorkerConfig['shopify']) =>
      new ShopifyTransport({ baseUrl, apiVersion, auth: tokenProviderFor(baseUrl, auth, { fetch }), fetch, pacer }),
  );
  return {
    async deactivateReward(id) {
      const { baseUrl, apiVersion, auth } = await read();
      return deactivateReward(transport({ baseUrl, apiVersion, auth }), id);
    },
  };
}

// ── The reconciler ──────────────────────────────────────────────────────────────────────────

export type EnabledReconcilerConfig = Extract<ReconcilerConfig, { enabled: true }>;

export interface ReconcileClients extends AwsClients {
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
