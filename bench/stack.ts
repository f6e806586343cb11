/**
 * The deployed handlers on loopback for the bench: fauxqs (SQS + DLQ) and dynalite (ledger), the
 * fake Shopify and Customer.io, and worker "containers" wired exactly as functions/worker.ts wires
 * itself in Lambda: the fulfilment dependencies (and so the Shopify transport and its pacer) are built
 * once per container and reused by every record and every invocation it handles. Unlike the test
 * harness (tests/support/pipeline.ts), nothing is shortened: production retry policy, the queue's
 * batch size and the worker's timeout from serverless.yml.
 */
import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyStructuredResultV2, Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { makeIngestHandler, type IngestHandler } from '../functions/ingest';
import { makeWorkerHandler } from '../functions/worker';
import { loadIngestConfig, loadWorkerConfig, loadWorkerRuntimeConfig, type Env } from '../lib/infra/config';
import type { Fetch } from '../lib/infra/http';
import type { Ledger } from '../lib/adapters/dynamodb/ledger';
import type { Checkpoint, FulfilDeps } from '../lib/domain/rewards';
import { loadEnv } from '../lib/infra/secrets';
import { ShopifyPacer } from '../lib/adapters/shopify/pacing';
import { httpApiEvent } from '../local/apigw';
import type { InfraDefinitions } from '../local/infra';
import type { SqsPoller } from '../local/poller';
import { queueDepth } from '../ops/queue-depth';
import type { StackResources } from '../local/resources';
import type { FakeCustomerIo, FakeCustomerIoOptions } from '../local/sandbox/customerio';
import type { FakeShopify, FakeShopifyOptions } from '../local/sandbox/shopify';
import { assembleStack, stackWorker, workerPoller, type Stack } from '../local/stack';
import { signWebhookBody } from '../local/vouch';
import { nowMs, sleep } from './stats';
import type { Emulators, EmulatorsModule } from '../local/emulators-types';

export const WEBHOOK_SECRET = 'bench-webhook-secret-0123456789abcdef';
/** The bench worker's REFERRAL_SIGNING_KEY; every referral body it sends is signed with it, as the app would. */
export const REFERRAL_SIGNING_KEY = 'bench-referral-signing-key-0123456789abcdef';

export type { Emulators };

/** The emulators jest's globalSetup started (TEST_*_ENDPOINT), else a pair of our own. */
export async function useEmulators(): Promise<Emulators> {
  const sqsEndpoint = process.env.TEST_SQS_ENDPOINT;
  const dynamoEndpoint = process.env.TEST_DYNAMODB_ENDPOINT;
  if (sqsEndpoint && dynamoEndpoint) return { sqsEndpoint, dynamoEndpoint, stop: async () => undefined };
  // fauxqs is ESM only: a computed specifier keeps this a native import() in this CommonJS file.
  const specifier = '../local/emulators.mjs';
  const { startEmulators } = (await import(specifier)) as EmulatorsModule;
  return startEmulators();
}

export interface StackOptions {
  shopify?: FakeShopifyOptions;
  customerio?: FakeCustomerIoOptions;
  /** Default 60 s: long enough for any batch here, short enough that a failed record comes back in a run. */
  visibilityTimeoutSeconds?: number;
  /** Called at each durable step of a fulfilment (timestamps for the throughput figures). */
  checkpoint?: (step: Checkpoint, eventId: string) => void;
  /** Ask DynamoDB for the capacity each ledger call consumed (the cost model's WRU/RRU). */
  consumedCapacity?: boolean;
  /** Extra worker/ingest environment. */
  env?: Env;
}

export interface AwsCounters {
  /** Requests by command name, e.g. SendMessageCommand; ReceiveMessage split into empty and not. */
  requests: Map<string, number>;
  writeUnits: number;
  readUnits: number;
}

type WorkerHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

export interface ContainerOptions {
  /** The fetch the container's clients send with, e.g. one that watches Shopify's answers. */
  fetch?: Fetch;
  /** false: Shopify requests go out without a pacer (the reference). */
  pacing?: boolean;
  /** The ledger the container writes through, e.g. one that holds a write at a gate; the stack's by default. */
  ledger?: Ledger;
}

/** One emulated Lambda container of the worker: its own cached deps, hence its own pacer. */
export class WorkerContainer {
  /** Each invocation: when it started (nowMs) and its wall time, ms. */
  public readonly invocations: { records: number; start: number; ms: number }[] = [];
  public readonly poller: SqsPoller;
  /** What functions/worker.ts does per invocation: re-read the config, rebuild only if it changed. */
  public readonly fulfilDeps: () => Promise<FulfilDeps>;

  /** The pacer this container's Shopify requests wait on (none when pacing is off). */
  public readonly pacer?: ShopifyPacer;

  public constructor(stack: BenchStack, options: ContainerOptions & { checkpoint?: StackOptions['checkpoint'] }) {
    const runtime = loadWorkerRuntimeConfig(stack.env);
    // The pacer the deployed worker builds for itself (its share: 1 / WORKER_MAX_CONCURRENCY, as
    // lib/infra/wiring.ts gives it), made here so the bench can read its stats; none for the
    // reference without pacing (the same transport, sending every request at once).
    this.pacer = options.pacing !== false ? new ShopifyPacer({ share: 1 / runtime.workerContainers }) : undefined;
    const { checkpoint } = options;
    // The deployed worker's pieces (local/stack.ts), one container's worth; config (and the cached secret) re-read per invocation.
    const deps = stackWorker(stack.parts, {
      loadConfig: async () => loadWorkerConfig(await loadEnv(stack.env)),
      pacer: this.pacer ?? false,
      ...(options.ledger ? { ledger: options.ledger } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(checkpoint ? { fulfil: { checkpoint } } : {}),
    });
    this.fulfilDeps = deps.fulfilDeps;
    const worker = makeWorkerHandler(deps) as WorkerHandler;
    const timed: WorkerHandler = async (event, context) => {
      const start = nowMs();
      try {
        return await worker(event, context);
      } finally {
        this.invocations.push({ records: event.Records.length, start, ms: nowMs() - start });
      }
    };
    this.poller = workerPoller(stack.parts, timed, { waitTimeSeconds: 0 });
  }

  /** Polls one batch, as the event source mapping would invoke this container; resolves to its size. */
  public pollOnce(): Promise<number> {
    return this.poller.pollOnce(0);
  }
}

export class BenchStack {
  public readonly aws: AwsCounters = { requests: new Map(), writeUnits: 0, readUnits: 0 };

  public readonly sqs: SQSClient;
  public readonly dynamo: DynamoDBClient;
  public readonly ledger: Ledger;
  public readonly resources: StackResources;
  public readonly defs: InfraDefinitions;
  public readonly shopify: FakeShopify;
  public readonly customerio: FakeCustomerIo;
  public readonly env: Env;

  private constructor(
    /** The local stack's parts (local/stack.ts). */
    public readonly parts: Stack,
    /** The ingest handler as deployed (makeIngestHandler), on this stack's queue. */
    public readonly ingestHandler: IngestHandler,
    private readonly options: StackOptions,
  ) {
    this.sqs = parts.sqs;
    this.dynamo = parts.dynamo;
    this.ledger = parts.ledger;
    this.resources = parts.resources;
    this.defs = parts.defs;
    this.shopify = parts.shopify!;
    this.customerio = parts.customerio!;
    this.env = parts.env;
  }

  /** POSTs a webhook body to ingest as API Gateway would deliver it. */
  public async ingest(body: string): Promise<APIGatewayProxyStructuredResultV2> {
    return this.ingestHandler(ingestEvent(body));
  }

  public static async start(emulators: Emulators, options: StackOptions = {}): Promise<BenchStack> {
    const parts = await assembleStack({
      endpoints: emulators,
      resources: { suffix: `-bench-${randomUUID().slice(0, 8)}`, visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 60 },
      shopify: options.shopify ?? {},
      customerio: options.customerio ?? {},
      env: { WEBHOOK_SECRET, REFERRAL_SIGNING_KEY, ...options.env },
    });
    // As deployed: config (and the cached secret) re-read per invocation.
    const ingest = makeIngestHandler({ sqs: parts.sqs, config: async () => loadIngestConfig(await loadEnv(parts.env)) });
    const stack = new BenchStack(parts, ingest, options);
    stack.countRequests();
    return stack;
  }

  /**
   * A new worker container (its own deps cache, its own Shopify pacer); `fetch` lets a bench watch
   * the answers; `pacing: false` sends its Shopify requests without a pacer (the reference).
   */
  public container(options: ContainerOptions = {}): WorkerContainer {
    return new WorkerContainer(this, { ...options, checkpoint: this.options.checkpoint });
  }

  public depth(queueUrl = this.resources.queueUrl): Promise<{ visible: number; inFlight: number }> {
    return queueDepth(this.sqs, queueUrl);
  }

  /**
   * Runs `containers` side by side, each polling one batch at a time (a Lambda container handles
   * one invocation at a time), until `done()` or the queue is empty with nothing in flight.
   */
  public async drain(containers: WorkerContainer[], done: () => boolean, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    const loop = async (container: WorkerContainer) => {
      while (!done() && Date.now() < until) {
        const received = await container.pollOnce();
        if (received > 0) continue;
        const depth = await this.depth();
        if (depth.visible + depth.inFlight === 0) return;
        await sleep(20);
      }
    };
    await Promise.all(containers.map(loop));
    if (!done() && Date.now() >= until) throw new Error(`the queue did not drain within ${timeoutMs} ms`);
  }

  public async stop(): Promise<void> {
    await this.parts.stop();
  }

  /** Counts every AWS request the stack makes (ingest, event source mapping, worker, ledger). */
  private countRequests(): void {
    const bump = (name: string) => this.aws.requests.set(name, (this.aws.requests.get(name) ?? 0) + 1);
    this.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        let name = context.commandName ?? 'unknown';
        if (name === 'ReceiveMessageCommand') {
          const messages = (result.output as { Messages?: unknown[] }).Messages ?? [];
          name = messages.length > 0 ? 'ReceiveMessageCommand' : 'ReceiveMessageCommand (empty)';
        }
        bump(name);
        return result;
      },
      { step: 'initialize', name: 'benchCountSqs' },
    );
    const consumed = this.options.consumedCapacity === true;
    this.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        bump(context.commandName ?? 'unknown');
        const input = args.input as { ReturnConsumedCapacity?: string };
        if (consumed && input.ReturnConsumedCapacity === undefined) input.ReturnConsumedCapacity = 'TOTAL';
        const result = await next(args);
        const capacity = (
          result.output as { ConsumedCapacity?: { CapacityUnits?: number; WriteCapacityUnits?: number; ReadCapacityUnits?: number } }
        ).ConsumedCapacity;
        if (capacity) {
          const name = context.commandName ?? '';
          const units = capacity.CapacityUnits ?? 0;
          if (/^(Get|Query|Scan|BatchGet)/.test(name)) this.aws.readUnits += capacity.ReadCapacityUnits ?? units;
          else this.aws.writeUnits += capacity.WriteCapacityUnits ?? units;
        }
        return result;
      },
      { step: 'initialize', name: 'benchCountDynamo' },
    );
  }
}

/** The API Gateway (HTTP API, v2) event for an authorised webhook POST. */
export function ingestEvent(body: string, headers: Record<string, string | undefined> = {}) {
  return httpApiEvent({ headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json', ...headers }, body });
}

/** A PostHog default-template webhook body for a fresh referral, signed as the app's backend signs it. */
export function referralBody(uuid: string = randomUUID()): { uuid: string; body: string } {
  const redeemer = `redeemer-${uuid.slice(0, 8)}@example.com`;
  const body = {
    event: {
      uuid,
      event: 'referral redeemed',
      distinct_id: redeemer,
      properties: { referrer_email: `referrer-${uuid.slice(0, 8)}@example.com`, redeemer_email: redeemer },
      elements_chain: '',
      timestamp: new Date().toISOString(),
      url: `https://us.posthog.com/project/1/events/${uuid}`,
    },
    person: { id: randomUUID(), name: redeemer, url: 'https://us.posthog.com/person/x', properties: { email: redeemer } },
  };
  return { uuid, body: JSON.stringify(signWebhookBody(body, REFERRAL_SIGNING_KEY)) };
}
