import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LifecycleIndex } from '../../domain/ledger-port';
import type { LifecycleQueue, LifecycleRecord } from '../../domain/lifecycle/record';
import { classify, QueryCommand } from './conditional';

/** The releaser's and `review list`'s reads of the sparse `lifecycle` index (serverless.yml); the worker never reads it. */
export class LifecycleIndexReader implements LifecycleIndex {
  public constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Referrals waiting in `queue` with `lifecycleAt` up to `until` (epoch ms), oldest first, from the sparse index. */
  public async waiting(queue: LifecycleQueue, until = Number.MAX_SAFE_INTEGER, limit = 1_000): Promise<LifecycleRecord[]> {
    const records: LifecycleRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client
        .send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: 'lifecycle',
            KeyConditionExpression: 'lifecycleQueue = :queue AND lifecycleAt <= :until',
            ExpressionAttributeValues: { ':queue': queue, ':until': until },
            ExclusiveStartKey: start,
            Limit: Math.min(100, limit - records.length),
          }),
        )
        .catch((error: unknown) => {
          throw classify(error, 'lifecycle: could not read the lifecycle index');
        });
      records.push(...((page.Items ?? []) as LifecycleRecord[]));
      start = page.LastEvaluatedKey;
    } while (start && records.length < limit);
    return records;
  }
}
