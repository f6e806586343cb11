/**
 * Which deployment the ops commands act on: a stage on AWS (names from serverless.yml, queue
 * URLs from GetQueueUrl) or the local stack that `npm start` runs (endpoints from
 * .local/stack.json, written by local/start.ts while it runs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../lib/infra/aws-clients';
import { SecretsManagerSource, type SecretSource } from '../lib/infra/secrets';
import { emulatorClients } from '../local/emulator-clients';
import { loadInfraDefinitions } from '../local/infra';
import { stackFilePath, type LocalStackFile } from '../local/state';

export type { LocalStackFile };

export interface Target {
  /** For people: `stage prod (us-east-1)` or `local stack (…/.local/stack.json)`. */
  description: string;
  /** An emulator (fauxqs, dynalite) rather than AWS: some SQS actions are missing there. */
  emulated: boolean;
  sqs: SQSClient;
  ddb: DynamoDBDocumentClient;
  queueUrl: string;
  deadLetterQueueUrl: string;
  tableName: string;
  /** Worker settings the lifecycle commands need beyond the process's own env (the local sandbox shop). */
  env?: Record<string, string>;
  /** The reconciler's settings for the local stack's sandbox PostHog (absent with a real PostHog, or in AWS). */
  reconcilerEnv?: Record<string, string>;
  /** A deployed stage's Secrets Manager, in its region (absent for the local stack, which has no secrets). */
  secrets?: SecretSource;
  close(): void;
}

export class TargetError extends Error {}

export function openLocalTarget(file: string = stackFilePath()): Target {
  if (!existsSync(file)) {
    throw new TargetError(`the local stack is not running (${file} not found): start it with \`npm start\` in another terminal`);
  }
  let stack: LocalStackFile;
  try {
    stack = JSON.parse(readFileSync(file, 'utf8')) as LocalStackFile;
  } catch (error) {
    throw new TargetError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  for (const key of ['sqsEndpoint', 'dynamoEndpoint', 'queueUrl', 'deadLetterQueueUrl', 'tableName'] as const) {
    if (typeof stack[key] !== 'string' || stack[key] === '') throw new TargetError(`${file} has no ${key}`);
  }
  const { sqs, dynamo, destroy } = emulatorClients(stack, stack.region || 'us-east-1');
  return {
    description: `local stack (${file})`,
    emulated: true,
    sqs,
    ddb: documentClient(dynamo),
    queueUrl: stack.queueUrl,
    deadLetterQueueUrl: stack.deadLetterQueueUrl,
    tableName: stack.tableName,
    ...(stack.sandboxShopify ? { env: stack.sandboxShopify } : {}),
    ...(stack.reconciler ? { reconcilerEnv: stack.reconciler } : {}),
    close: destroy,
  };
}

/** A deployed stage: the AWS credentials are the usual SDK chain (AWS_PROFILE, env, SSO…). */
export async function openAwsTarget(stage: string, region: string): Promise<Target> {
  const defs = loadInfraDefinitions(undefined, stage);
  const sqs = new SQSClient({ region });
  const dynamo = new DynamoDBClient({ region });
  const close = (): void => {
    sqs.destroy();
    dynamo.destroy();
  };
  try {
    const url = async (name: string): Promise<string> => {
      try {
        const result = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
        return result.QueueUrl!;
      } catch (error) {
        const name_ = (error as { name?: string }).name ?? '';
        if (/NonExistentQueue|QueueDoesNotExist/.test(name_)) {
          throw new TargetError(`queue ${name} not found in ${region}: is stage "${stage}" deployed there? (--stage, --region)`);
        }
        throw error;
      }
    };
    const [queueUrl, deadLetterQueueUrl] = await Promise.all([url(defs.queue.name), url(defs.deadLetterQueue.name)]);
    return {
      description: `stage ${stage} (${region})`,
      emulated: false,
      sqs,
      ddb: documentClient(dynamo),
      queueUrl,
      deadLetterQueueUrl,
      tableName: defs.table.name,
      secrets: new SecretsManagerSource(new SecretsManagerClient({ region })),
      close,
    };
  } catch (error) {
    close();
    throw error;
  }
}
