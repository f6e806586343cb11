import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReconcilerConfig } from './config';
import type { Fetch } from './http';
import { queueSender } from '../adapters/sqs/queue';
import { slidingWindow, type ReconcileDeps, type ReconcileLogger, type ReconcileOptions, type ReconcileWindow } from '../domain/reconcile';
import { personEventsInLedger, referralsInLedger } from '../adapters/dynamodb/reconciler-ledger';
import { PostHogEventsQuery } from '../adapters/posthog-query';

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

/** Options for one run; the window defaults to the scheduled sliding window, and a DRY_RUN stage's run is a dry run. */
export function reconcileOptions(
  config: EnabledReconcilerConfig,
  now: number,
  overrides: { window?: ReconcileWindow; dryRun?: boolean; pageSize?: number } = {},
): ReconcileOptions {
  return {
    referralEvent: config.referralEvent,
    referrerEmailProperty: config.referrerEmailProperty,
    redeemerEmailProperty: config.redeemerEmailProperty,
    window: overrides.window ?? slidingWindow(config, now),
    qualifyEvent: config.personEvents.qualifyEvent,
    revokeEvent: config.personEvents.revokeEvent,
    catchUp: { ...config.personEvents, referralsFrom: config.from },
    dryRun: overrides.dryRun || config.dryRun,
    pageSize: overrides.pageSize,
  };
}
