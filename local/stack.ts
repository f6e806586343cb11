/**
 * The local stack, assembled in one place for `npm start` (local/start.ts), the integration tests
 * (tests/support/pipeline.ts) and the bench (bench/stack.ts): SQS and DynamoDB clients on the
 * emulators, the queue, DLQ and ledger table as serverless.yml defines them, the fake vendors, the
 * functions' environment, the worker wired as functions/worker.ts wires itself, and the event
 * source mapping that feeds it. Each caller adds only what is its own: `npm start` its banner,
 * loops and gateway; the harness its checkpoints, clocks and crashing ledgers; the bench its round
 * trips and counters.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Ledger } from '../lib/adapters/dynamodb/ledger';
import { ShopifyPacer } from '../lib/adapters/shopify/pacing';
import type { FulfilDeps } from '../lib/domain/rewards';
import { documentClient } from '../lib/infra/aws-clients';
import { loadWorkerConfig, loadWorkerRuntimeConfig, type Env, type WorkerConfig } from '../lib/infra/config';
import { cachedFulfilDeps, containerFulfilDeps, workerDepsFrom, type FulfilClients, type WorkerDeps } from '../lib/infra/wiring';
import { emulatorClients } from './emulator-clients';
import { loadInfraDefinitions, type InfraDefinitions } from './infra';
import { SqsPoller, type PollerOptions, type SqsHandler } from './poller';
import { createStackResources, functionEnv, type ResourceOverrides, type StackResources } from './resources';
import { startFakeCustomerIo, type FakeCustomerIo, type FakeCustomerIoOptions } from './sandbox/customerio';
import { startFakePostHog, type FakePostHog } from './sandbox/posthog';
import { startFakeShopify, type FakeShopify, type FakeShopifyOptions } from './sandbox/shopify';

export const REGION = 'us-east-1';

export interface StackOptions {
  /** Where the emulators listen: local/emulators.mjs's, or the pair jest's globalSetup started. */
  endpoints: { sqsEndpoint: string; dynamoEndpoint: string };
  /** A suffix for every name (parallel test files), a shorter visibility timeout. */
  resources?: ResourceOverrides;
  /** The fake Shopify, with these options; false when the functions are pointed at another shop. */
  shopify?: FakeShopifyOptions | false;
  /** The fake Customer.io, with these options; false when the functions are pointed at another workspace. */
  customerio?: FakeCustomerIoOptions | false;
  /** The fake PostHog (its Query API for the reconciler); `capture` also points the worker's outcome capture at it. */
  posthog?: { capture: boolean };
  /** The functions' settings and secrets, over what the stack gives them. */
  env?: Env;
}

export interface Stack {
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  ddb: DynamoDBDocumentClient;
  defs: InfraDefinitions;
  resources: StackResources;
  shopify?: FakeShopify;
  customerio?: FakeCustomerIo;
  posthog?: FakePostHog;
  /** The functions' environment: the resources, the fakes' URLs and credentials, then `options.env`. */
  env: Env;
  /** The ledger on the stack's table, for the caller's own reads. */
  ledger: Ledger;
  /** Closes the fakes and the clients, last started first. */
  stop(): Promise<void>;
}

/** Clients, resources and fakes; on a failure part way, what was started is stopped again. */
export async function assembleStack(options: StackOptions): Promise<Stack> {
  const clients = emulatorClients(options.endpoints, REGION);
  const stops: (() => unknown)[] = [() => clients.destroy()];
  const stop = async (): Promise<void> => {
    while (stops.length > 0) await stops.pop()!();
  };
  try {
    const { sqs, dynamo } = clients;
    const defs = loadInfraDefinitions();
    const resources = await createStackResources(sqs, dynamo, defs, options.resources);
    const shopify = options.shopify === false ? undefined : await startFakeShopify(options.shopify);
    if (shopify) stops.push(() => shopify.close());
    const customerio = options.customerio === false ? undefined : await startFakeCustomerIo(options.customerio);
    if (customerio) stops.push(() => customerio.close());
    const posthog = options.posthog ? await startFakePostHog() : undefined;
    if (posthog) stops.push(() => posthog.close());
    const env: Env = {
      ...functionEnv(resources, defs),
      ...shopify?.env,
      ...customerio?.env,
      ...(options.posthog?.capture ? posthog?.env : {}),
      ...options.env,
    };
    const ddb = documentClient(dynamo);
    return { sqs, dynamo, ddb, defs, resources, shopify, customerio, posthog, env, ledger: new Ledger(ddb, resources.tableName), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The worker's event source mapping on the stack's queue: the queue's batch size, the worker's timeout from serverless.yml. */
export function workerPoller(stack: Stack, handler: SqsHandler, options: Partial<Omit<PollerOptions, 'handler'>> = {}): SqsPoller {
  return new SqsPoller({
    sqs: stack.sqs,
    queueUrl: stack.resources.queueUrl,
    queueArn: stack.resources.queueArn,
    batchSize: stack.defs.worker.batchSize,
    timeoutMs: stack.defs.worker.timeoutSeconds * 1000,
    region: REGION,
    handler,
    ...options,
  });
}

export interface StackWorkerOptions extends FulfilClients {
  /** The config re-read per invocation; the stack's env by default. */
  loadConfig?: () => Promise<WorkerConfig>;
  /** The ledger the worker writes through (fulfilment and the handler's own fail and release); the stack's by default. */
  ledger?: Ledger;
  /** The container's Shopify pacer (false: none); by default the deployed one's, its share of the shop's budget. */
  pacer?: ShopifyPacer | false;
  /** Applied over each config's fulfilment dependencies (a checkpoint, a shorter backoff, a code generator). */
  fulfil?: Partial<FulfilDeps>;
}

/**
 * One worker container's dependencies, from the pieces lib/infra/wiring.ts's createWorkerDeps
 * builds the deployed worker from: the config re-read per invocation, the clients rebuilt only
 * when it changed, one pacer and one token for the container's life.
 */
export function stackWorker(stack: Stack, options: StackWorkerOptions = {}): WorkerDeps {
  const runtime = loadWorkerRuntimeConfig(stack.env);
  const ledger = options.ledger ?? stack.ledger;
  const pacer = options.pacer ?? new ShopifyPacer({ share: 1 / runtime.workerContainers });
  const build = containerFulfilDeps(ledger, pacer, { fetch: options.fetch, now: options.now });
  const loadConfig = options.loadConfig ?? (async () => loadWorkerConfig(stack.env));
  const fulfilDeps = cachedFulfilDeps(loadConfig, (config) => ({ ...build(config), ...options.fulfil }));
  return workerDepsFrom(runtime, { sqs: stack.sqs, ledger, fulfilDeps });
}
