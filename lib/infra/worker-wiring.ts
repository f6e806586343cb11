/**
 * The one way to build the worker: functions/worker.ts (in Lambda), tests/support/pipeline.ts
 * and bench/stack.ts all call createWorkerDeps, so a dependency added here reaches the deployed
 * worker, the tests and the bench alike: a hand-made copy elsewhere would test a worker that is
 * not the one deployed.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { WorkerConfig, WorkerRuntimeConfig } from './config';
import type { Fetch } from './http';
import { Ledger, type LedgerPort } from '../adapters/dynamodb/ledger';
import { metrics, MetricUnit, type ScopedLogger } from './observability';
import type { FulfilDeps } from '../domain/rewards';
import type { RetryOptions } from './retry';
import { cachedFulfilDeps, type FulfilOverrides } from './wiring';

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
 * Shopify pacer, token and shop currency live as long as the container (lib/infra/wiring.ts).
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
