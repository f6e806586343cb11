import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand } from './conditional';
import { RetryableError } from '../../domain/errors';
import { personEventKey, referralKey } from './ledger';
import { sleep } from '../../infra/retry';

/**
 * All the reconciler reads of a record: its key, enough to know the ledger has it. Its IAM role
 * may read nothing else (serverless.yml's `dynamodb:Attributes` condition lists exactly these),
 * so the codes and emails stay out of its reach.
 */
export const RECONCILER_ATTRIBUTES = ['pk'] as const;

/** BatchGetItem's limit per request. */
const BATCH = 100;
const MAX_ROUNDS = 8;

/**
 * Which of these referrals the ledger has heard of, in any state: begun, rejected by a rule,
 * failed, completed. Only the absent ones were lost before the queue. Eventually consistent
 * reads are enough: a referral begun a moment ago and read as absent is re-queued, and the
 * worker dedupes it by uuid (begin's condition).
 */
export function referralsInLedger(client: DynamoDBDocumentClient, tableName: string, eventIds: readonly string[]): Promise<Set<string>> {
  return keysInLedger(client, tableName, referralKey(''), eventIds);
}

/**
 * Which of these qualifying or refund events the worker has handled (`person-event#<uuid>`, the uuid
 * lower-case): the catch-up queues only the others. The same key-only read, so the role's condition still holds.
 */
export function personEventsInLedger(client: DynamoDBDocumentClient, tableName: string, eventIds: readonly string[]): Promise<Set<string>> {
  return keysInLedger(client, tableName, personEventKey(''), eventIds);
}

async function keysInLedger(
  client: DynamoDBDocumentClient,
  tableName: string,
  prefix: string,
  eventIds: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  const unique = [...new Set(eventIds)];
  for (let start = 0; start < unique.length; start += BATCH) {
    let keys: Record<string, unknown>[] = unique.slice(start, start + BATCH).map((id) => ({ pk: `${prefix}${id}` }));
    for (let round = 0; keys.length > 0; round++) {
      if (round === MAX_ROUNDS) throw new RetryableError('the ledger kept returning unprocessed keys');
      if (round > 0) await sleep(50 * 2 ** round);
      let result;
      try {
        result = await client.send(
          new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keys, ProjectionExpression: RECONCILER_ATTRIBUTES.join(', ') } } }),
        );
      } catch (error) {
        throw new RetryableError('the ledger could not be read', { cause: error });
      }
      for (const item of result.Responses?.[tableName] ?? []) {
        const pk = String(item.pk ?? '');
        if (pk.startsWith(prefix)) found.add(pk.slice(prefix.length));
      }
      keys = (result.UnprocessedKeys?.[tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
    }
  }
  return found;
}
