import { GetCommand, UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { PermanentError, RetryableError } from '../../domain/errors';

/**
 * The commands only the releaser's and the reconciler's adapters send, imported from here rather
 * than from the SDK: a file that imports a CommonJS package keeps one line in every bundle that
 * reaches it, so the worker's bundle (which reaches them through lib/infra/wiring.ts and never
 * calls them) would otherwise name them as its own code (tests/support/worker-inputs.ts).
 */
export { BatchGetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';

export type Item = Record<string, unknown>;

/** The ledger table's items, by partition key, each failure classified under the message given. */
export const ledgerTable = (client: DynamoDBDocumentClient, tableName: string) => ({
  /** One conditional update: the new attributes (or {} without ReturnValues), undefined if its condition refused it. */
  async update(pk: string, input: Omit<UpdateCommandInput, 'TableName' | 'Key'>, failure: string): Promise<Item | undefined> {
    try {
      return (await client.send(new UpdateCommand({ TableName: tableName, Key: { pk }, ...input }))).Attributes ?? {};
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw classify(error, failure);
    }
  },
  /** One item, read consistently (a claim or a lease just written must be seen). */
  async read(pk: string, failure: string): Promise<Item | undefined> {
    try {
      return (await client.send(new GetCommand({ TableName: tableName, Key: { pk }, ConsistentRead: true }))).Item;
    } catch (error) {
      throw classify(error, failure);
    }
  },
});
export type LedgerTable = ReturnType<typeof ledgerTable>;

export function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException';
}

/**
 * A missing table or a denied action will not heal by retrying: dead-letter with the reason so
 * the operator fixes the deployment and redrives. Throttling, timeouts and 5xx are transient.
 */
export function classify(error: unknown, message: string): RetryableError | PermanentError {
  if (error instanceof RetryableError || error instanceof PermanentError) return error;
  const name = (error as { name?: string } | undefined)?.name ?? '';
  if (PERMANENT_AWS_ERRORS.has(name)) return new PermanentError('ledger_unavailable', `${message} (${name})`, { cause: error });
  return new RetryableError(message, { cause: error });
}

const PERMANENT_AWS_ERRORS = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'ValidationException',
  'UnrecognizedClientException',
]);
