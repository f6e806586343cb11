import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { InfraDefinitions } from './infra';

export interface StackResources {
  queueUrl: string;
  queueArn: string;
  deadLetterQueueUrl: string;
  deadLetterQueueArn: string;
  tableName: string;
  /** The queue's VisibilityTimeout as created (the override, or serverless.yml's), seconds. */
  visibilityTimeoutSeconds: number;
}

export interface ResourceOverrides {
  /** Appended to every name, so parallel test files get their own queue, DLQ and table. */
  suffix?: string;
  /** Tests shorten the visibility timeout so a failed record comes back in a second, not six minutes. */
  visibilityTimeoutSeconds?: number;
}

/**
 * What serverless.yml gives the functions about their resources: the queue's redrive count (the
 * worker's last receive) and its visibility timeout (the longest a failed record is made to wait).
 */
export function functionEnv(
  resources: StackResources,
  defs: InfraDefinitions,
): { QUEUE_URL: string; DLQ_URL: string; TABLE_NAME: string; MAX_RECEIVE_COUNT: string; QUEUE_VISIBILITY_TIMEOUT: string } {
  return {
    QUEUE_URL: resources.queueUrl,
    DLQ_URL: resources.deadLetterQueueUrl,
    TABLE_NAME: resources.tableName,
    MAX_RECEIVE_COUNT: String(defs.queue.maxReceiveCount),
    QUEUE_VISIBILITY_TIMEOUT: String(resources.visibilityTimeoutSeconds),
  };
}

/** Creates the queue, DLQ (with redrive) and ledger table as serverless.yml defines them. */
export async function createStackResources(
  sqs: SQSClient,
  dynamo: DynamoDBClient,
  defs: InfraDefinitions,
  overrides: ResourceOverrides = {},
): Promise<StackResources> {
  const suffix = overrides.suffix ?? '';
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${defs.deadLetterQueue.name}${suffix}`,
      Attributes: { MessageRetentionPeriod: String(defs.deadLetterQueue.attributes.MessageRetentionPeriod) },
    }),
  );
  const deadLetterQueueArn = await queueArn(sqs, dlq.QueueUrl!);
  const visibilityTimeoutSeconds = overrides.visibilityTimeoutSeconds ?? defs.queue.attributes.VisibilityTimeout;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${defs.queue.name}${suffix}`,
      Attributes: {
        VisibilityTimeout: String(visibilityTimeoutSeconds),
        MessageRetentionPeriod: String(defs.queue.attributes.MessageRetentionPeriod),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetterQueueArn, maxReceiveCount: defs.queue.maxReceiveCount }),
      },
    }),
  );
  const tableName = `${defs.table.name}${suffix}`;
  await createLedgerTable(dynamo, defs, tableName);
  return {
    queueUrl: queue.QueueUrl!,
    queueArn: await queueArn(sqs, queue.QueueUrl!),
    deadLetterQueueUrl: dlq.QueueUrl!,
    deadLetterQueueArn,
    tableName,
    visibilityTimeoutSeconds,
  };
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const result = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  return result.Attributes!.QueueArn!;
}

/** The ledger table (keys, index, billing) as serverless.yml defines it, under `tableName`. */
export async function createLedgerTable(dynamo: DynamoDBClient, defs: InfraDefinitions, tableName: string): Promise<void> {
  await dynamo.send(
    new CreateTableCommand({
      TableName: tableName,
      KeySchema: defs.table.keySchema,
      AttributeDefinitions: defs.table.attributeDefinitions,
      BillingMode: defs.table.billingMode,
      ...(defs.table.globalSecondaryIndexes ? { GlobalSecondaryIndexes: defs.table.globalSecondaryIndexes } : {}),
    }),
  );
}
