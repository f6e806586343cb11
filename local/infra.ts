/**
 * The local stack's view of the infrastructure, read from serverless.yml so that local and AWS
 * share ONE definition (queue + dead-letter queue + ledger table + worker event-source settings).
 *
 * Only the variables those entries use are resolved: `${self:custom.settings.X}`,
 * `${self:service}` and `${sls:stage}`. Anything else (`${AWS::Region}` inside Fn::Sub,
 * `${env:...}`) is left as written; it is never needed here.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { load } from 'js-yaml';

export const SERVERLESS_YML = resolvePath(__dirname, '..', 'serverless.yml');

export interface KeySchemaElement {
  AttributeName: string;
  KeyType: 'HASH' | 'RANGE';
}

export interface AttributeDefinition {
  AttributeName: string;
  AttributeType: 'S' | 'N' | 'B';
}

export interface InfraDefinitions {
  queue: {
    name: string;
    /** Seconds. SQS's CreateQueue wants strings: pass `String(value)`. */
    attributes: { VisibilityTimeout: number; MessageRetentionPeriod: number };
    /** RedrivePolicy.maxReceiveCount: receives before SQS moves a message to the dead-letter queue. */
    maxReceiveCount: number;
  };
  deadLetterQueue: {
    name: string;
    attributes: { MessageRetentionPeriod: number };
  };
  table: {
    name: string;
    keySchema: KeySchemaElement[];
    attributeDefinitions: AttributeDefinition[];
    billingMode: 'PAY_PER_REQUEST' | 'PROVISIONED';
    /** GlobalSecondaryIndexes as written (the reward lifecycle's sparse index), passed to CreateTable as they are. */
    globalSecondaryIndexes?: { IndexName: string; KeySchema: KeySchemaElement[]; Projection: { ProjectionType: 'ALL' } }[];
  };
  worker: {
    batchSize: number;
    /** Seconds (MaximumBatchingWindowInSeconds). */
    maximumBatchingWindow: number;
    timeoutSeconds: number;
  };
}

type Dict = Record<string, unknown>;

const isDict = (value: unknown): value is Dict => typeof value === 'object' && value !== null && !Array.isArray(value);

function dict(value: unknown, where: string): Dict {
  if (!isDict(value)) throw new Error(`serverless.yml: ${where} is not a mapping`);
  return value;
}

const REFERENCE = String.raw`\$\{(self:custom\.settings\.[A-Za-z0-9_]+|self:service|sls:stage)\}`;
const EMBEDDED = new RegExp(REFERENCE, 'g');
const WHOLE = new RegExp(`^${REFERENCE}$`);

/** Resolve the supported variables in a value (recursively). A string that is exactly one variable keeps the variable's type (a number stays a number). */
function resolveVariables(value: unknown, lookup: (ref: string) => unknown): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole) return lookup(whole[1] as string);
    return value.replace(EMBEDDED, (_match, ref: string) => String(lookup(ref)));
  }
  if (Array.isArray(value)) return value.map((item) => resolveVariables(item, lookup));
  if (isDict(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolveVariables(item, lookup)]));
  }
  return value;
}

function num(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`serverless.yml: ${where} must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function str(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('${')) {
    throw new Error(`serverless.yml: ${where} must be a resolved string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], where: string): T {
  if (!allowed.includes(value as T)) {
    throw new Error(`serverless.yml: ${where} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`serverless.yml: ${where} is not a list`);
  return value;
}

/**
 * Read the queue, dead-letter queue, ledger table and worker settings from serverless.yml.
 * `stage` replaces `${sls:stage}` in resource names ('local' for the local stack).
 */
export function loadInfraDefinitions(file: string = SERVERLESS_YML, stage = 'local'): InfraDefinitions {
  const doc = dict(load(readFileSync(file, 'utf8')), 'the document');
  const service = str(doc.service, 'service');
  const settings = dict(dict(doc.custom, 'custom').settings, 'custom.settings');

  const lookup = (ref: string): unknown => {
    if (ref === 'self:service') return service;
    if (ref === 'sls:stage') return stage;
    const key = ref.slice('self:custom.settings.'.length);
    if (!(key in settings)) throw new Error(`serverless.yml: \${${ref}} is not defined in custom.settings`);
    return settings[key];
  };

  const resources = dict(dict(doc.resources, 'resources').Resources, 'resources.Resources');
  const properties = (logicalId: string, type: string): Dict => {
    const resource = dict(resources[logicalId], `resources.Resources.${logicalId}`);
    if (resource.Type !== type) throw new Error(`serverless.yml: ${logicalId} must be ${type}, got ${String(resource.Type)}`);
    return dict(resolveVariables(resource.Properties, lookup), `${logicalId}.Properties`);
  };

  const queue = properties('RewardsQueue', 'AWS::SQS::Queue');
  const redrivePolicy = dict(queue.RedrivePolicy, 'RewardsQueue.Properties.RedrivePolicy');
  const deadLetterQueue = properties('RewardsDeadLetterQueue', 'AWS::SQS::Queue');
  const table = properties('LedgerTable', 'AWS::DynamoDB::Table');

  const worker = dict(resolveVariables(dict(doc.functions, 'functions').worker, lookup), 'functions.worker');
  const sqsEvents = list(worker.events, 'functions.worker.events')
    .filter(isDict)
    .map((event) => event.sqs)
    .filter(isDict);
  if (sqsEvents.length !== 1) throw new Error('serverless.yml: functions.worker must have exactly one sqs event');
  const sqsEvent = sqsEvents[0] as Dict;

  return {
    queue: {
      name: str(queue.QueueName, 'RewardsQueue.QueueName'),
      attributes: {
        VisibilityTimeout: num(queue.VisibilityTimeout, 'RewardsQueue.VisibilityTimeout'),
        MessageRetentionPeriod: num(queue.MessageRetentionPeriod, 'RewardsQueue.MessageRetentionPeriod'),
      },
      maxReceiveCount: num(redrivePolicy.maxReceiveCount, 'RewardsQueue.RedrivePolicy.maxReceiveCount'),
    },
    deadLetterQueue: {
      name: str(deadLetterQueue.QueueName, 'RewardsDeadLetterQueue.QueueName'),
      attributes: {
        MessageRetentionPeriod: num(deadLetterQueue.MessageRetentionPeriod, 'RewardsDeadLetterQueue.MessageRetentionPeriod'),
      },
    },
    table: {
      name: str(table.TableName, 'LedgerTable.TableName'),
      keySchema: list(table.KeySchema, 'LedgerTable.KeySchema').map((element, i) => {
        const e = dict(element, `LedgerTable.KeySchema[${i}]`);
        return {
          AttributeName: str(e.AttributeName, `LedgerTable.KeySchema[${i}].AttributeName`),
          KeyType: oneOf(e.KeyType, ['HASH', 'RANGE'] as const, `LedgerTable.KeySchema[${i}].KeyType`),
        };
      }),
      attributeDefinitions: list(table.AttributeDefinitions, 'LedgerTable.AttributeDefinitions').map((element, i) => {
        const e = dict(element, `LedgerTable.AttributeDefinitions[${i}]`);
        return {
          AttributeName: str(e.AttributeName, `LedgerTable.AttributeDefinitions[${i}].AttributeName`),
          AttributeType: oneOf(e.AttributeType, ['S', 'N', 'B'] as const, `LedgerTable.AttributeDefinitions[${i}].AttributeType`),
        };
      }),
      billingMode: oneOf(table.BillingMode, ['PAY_PER_REQUEST', 'PROVISIONED'] as const, 'LedgerTable.BillingMode'),
      ...(table.GlobalSecondaryIndexes
        ? {
            globalSecondaryIndexes: list(
              table.GlobalSecondaryIndexes,
              'LedgerTable.GlobalSecondaryIndexes',
            ) as InfraDefinitions['table']['globalSecondaryIndexes'],
          }
        : {}),
    },
    worker: {
      batchSize: num(sqsEvent.batchSize, 'functions.worker sqs batchSize'),
      maximumBatchingWindow: num(sqsEvent.maximumBatchingWindow, 'functions.worker sqs maximumBatchingWindow'),
      timeoutSeconds: num(worker.timeout, 'functions.worker.timeout'),
    },
  };
}
