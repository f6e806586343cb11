import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReleaserConfig } from './config';
import { Ledger } from '../adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../adapters/dynamodb/lifecycle-index';
import { queueSender } from '../adapters/sqs/queue';
import type { ReleaserDeps } from '../domain/lifecycle/release';

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
