import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CustomerIoConfig, ReleaserConfig } from './config';
import type { Fetch } from './http';
import { CustomerIoClient, CustomerIoStatusSender } from '../adapters/customerio';
import { Ledger } from '../adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../adapters/dynamodb/lifecycle-index';
import { queueSender } from '../adapters/sqs/queue';
import type { ReleaserDeps } from '../domain/lifecycle/release';
import type { StatusSender } from '../domain/status';

/** What the releaser talks through; `customerio` reads Customer.io's settings (the worker's secret in AWS) when a status is told. */
export interface ReleaserClients {
  sqs: SQSClient;
  ddb: DynamoDBDocumentClient;
  customerio: () => Promise<CustomerIoConfig>;
  fetch?: Fetch;
}

/** The releaser's dependencies from its validated config: functions/release.ts and `npm start` (local/start.ts) share this. */
export function releaserDeps(
  config: ReleaserConfig,
  clients: ReleaserClients,
  options: Pick<ReleaserDeps, 'resendAfterMs' | 'now'> = {},
): ReleaserDeps {
  return {
    ledger: new Ledger(clients.ddb, config.tableName),
    index: new LifecycleIndexReader(clients.ddb, config.tableName),
    enqueue: queueSender(clients.sqs, config.queueUrl),
    ...(config.statusEvent ? { status: statusSenderReading(config.statusEvent, clients, options.now) } : {}),
    ...options,
  };
}

/**
 * A status sender that reads Customer.io's credentials at each send (the secret loader caches
 * them), so a rotated key is picked up, and a releaser that never tells a status never reads them.
 */
function statusSenderReading(eventName: string, clients: Pick<ReleaserClients, 'customerio' | 'fetch'>, now?: () => number): StatusSender {
  return {
    async sendStatus(message) {
      const client = new CustomerIoClient({ ...(await clients.customerio()), fetch: clients.fetch });
      await new CustomerIoStatusSender(client, eventName, now).sendStatus(message);
    },
  };
}
