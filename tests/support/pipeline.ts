import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { makeIngestHandler } from '../../functions/ingest';
import { makeReconcileHandler, type ReconcileResult } from '../../functions/reconcile';
import { makeWorkerHandler } from '../../functions/worker';
import { queueDepth } from '../../ops/queue-depth';
import { redrive } from '../../ops/redrive';
import { loadIngestConfig, loadReconcilerConfig, type Env } from '../../lib/infra/config';
import { Ledger, type LedgerRecord } from '../../lib/adapters/dynamodb/ledger';
import type { Checkpoint } from '../../lib/domain/rewards';
import { httpApiEvent } from '../../local/apigw';
import type { SqsPoller } from '../../local/poller';
import type { StackResources } from '../../local/resources';
import type { FakeCustomerIo } from '../../local/sandbox/customerio';
import type { FakePostHog } from '../../local/sandbox/posthog';
import type { FakeShopify, FakeShopifyOptions } from '../../local/sandbox/shopify';
import { assembleStack, stackWorker, workerPoller, type Stack } from '../../local/stack';
import { signWebhookBody } from '../../local/vouch';
import { TEST_REFERRAL_SIGNING_KEY } from './referral-signing';
import type { StatusSender } from '../../lib/domain/status';

export const WEBHOOK_SECRET = 'test-webhook-secret-0123456789abcdef';

export interface PipelineOptions {
  /** Seconds before a failed record is received again (the deployed queue uses 360). */
  visibilityTimeoutSeconds?: number;
  workerTimeoutMs?: number;
  shopify?: FakeShopifyOptions;
  env?: Env;
  checkpoint?: (step: Checkpoint, eventId: string) => void | Promise<void>;
  /** Replaces the code generator, e.g. to force a collision with a card already on the shop. */
  newCode?: () => string;
  /**
   * fulfilReferral's collisionConfirmMs; 0 by default: the harness's redelivery comes within
   * seconds, and 0 still takes the sighting-and-retry path before a sent code is replaced.
   */
  collisionConfirmMs?: number;
  /** Capture outcomes into the fake PostHog (default true); false leaves POSTHOG_API_KEY unset. */
  capture?: boolean;
  /**
   * Per-request timeout of the Shopify and Customer.io clients, in ms (theirs is 10 s). Applied by
   * wrapping fetch, so a fake's 'timeout' fault costs this much instead of ten seconds.
   */
  clientTimeoutMs?: number;
  /** WaitTimeSeconds of the poller's receives (default 0); > 0 lets `poller.start(n)` long-poll instead of spinning. */
  pollWaitTimeSeconds?: number;
  /** Errors the poller swallows in `poller.start()` loops or on a thrown invocation. */
  onPollerError?: (error: unknown) => void;
  /** The worker's clock for what it dates (reward expiry, Customer.io timestamp); leases keep real time. */
  now?: () => number;
  /** Wraps the ledger the worker and fulfilment use, e.g. to fail one call of one referral (`pipeline.ledger` stays the real one). */
  wrapLedger?: (ledger: Ledger) => Ledger;
  /** Wraps the DynamoDB client the worker's ledger writes through, e.g. to fail one kind of write. */
  wrapDdb?: (ddb: DynamoDBDocumentClient) => DynamoDBDocumentClient;
  /** Where the worker tells a referral's status (CUSTOMERIO_STATUS_EVENT's sender), e.g. a recorder. */
  status?: StatusSender;
}

/**
 * The real pipeline on loopback: ingest and worker handlers as deployed, fauxqs (SQS + DLQ),
 * dynalite (ledger), and the contract-honouring fake Shopify and Customer.io servers.
 */
export class Pipeline {
  public readonly sqs: SQSClient;
  /** The ledger on the stack's table, for the test's own reads (the worker may be given a wrapped one). */
  public readonly ledger: Ledger;
  public readonly resources: StackResources;
  public readonly shopify: FakeShopify;
  public readonly customerio: FakeCustomerIo;
  public readonly posthog: FakePostHog;
  /** The document client on dynalite, for the reconciler's ledger look-ups. */
  public readonly ddb: DynamoDBDocumentClient;
  /** The functions' environment, read afresh by every invocation: change one (REWARD_TYPE) and the next invocation sees it. */
  public readonly env: Env;

  private constructor(
    private readonly stack: Stack,
    public readonly poller: SqsPoller,
    private readonly ingestHandler: ReturnType<typeof makeIngestHandler>,
    public readonly maxReceiveCount: number,
  ) {
    this.sqs = stack.sqs;
    this.ledger = stack.ledger;
    this.resources = stack.resources;
    this.shopify = stack.shopify!;
    this.customerio = stack.customerio!;
    this.posthog = stack.posthog!;
    this.ddb = stack.ddb;
    this.env = stack.env;
  }

  public static async start(options: PipelineOptions = {}): Promise<Pipeline> {
    const stack = await assembleStack({
      endpoints: { sqsEndpoint: requireEnv('TEST_SQS_ENDPOINT'), dynamoEndpoint: requireEnv('TEST_DYNAMODB_ENDPOINT') },
      resources: { suffix: `-${randomUUID().slice(0, 8)}`, visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 1 },
      shopify: options.shopify ?? {},
      customerio: {},
      posthog: { capture: options.capture !== false },
      env: { WEBHOOK_SECRET, REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY, ...options.env },
    });
    const { sqs, ddb, env } = stack;
    const ingestHandler = makeIngestHandler({ sqs, config: async () => loadIngestConfig(env) });
    // One container, as the deployed worker has, and built from the same pieces: clients (the
    // Shopify pacer, token, shop currency) outlive an invocation; the fulfilment settings are
    // re-read each time, so a test may change `env` mid-flight. The worker's ledger is the
    // test's own when it wraps one (`pipeline.ledger` stays the real one, for the test's reads).
    const workerLedger = new Ledger(options.wrapDdb ? options.wrapDdb(ddb) : ddb, stack.resources.tableName);
    const workerDeps = stackWorker(stack, {
      ledger: options.wrapLedger ? options.wrapLedger(workerLedger) : workerLedger,
      ...(options.clientTimeoutMs !== undefined ? { fetch: fetchTimingOutAfter(options.clientTimeoutMs) } : {}),
      ...(options.now ? { now: options.now } : {}),
      fulfil: {
        // Fast backoff keeps the suite quick; the policy itself is the production one.
        retry: { baseDelayMs: 5, maxDelayMs: 50 },
        checkpoint: options.checkpoint,
        collisionConfirmMs: options.collisionConfirmMs ?? 0,
        ...(options.newCode ? { newCode: options.newCode } : {}),
        ...(options.status ? { status: options.status } : {}),
      },
    });
    const poller = workerPoller(stack, makeWorkerHandler(workerDeps), {
      timeoutMs: options.workerTimeoutMs ?? stack.defs.worker.timeoutSeconds * 1000,
      waitTimeSeconds: options.pollWaitTimeSeconds ?? 0,
      onError: options.onPollerError,
    });
    return new Pipeline(stack, poller, ingestHandler, workerDeps.maxReceiveCount);
  }

  /**
   * POSTs a webhook body to ingest as API Gateway would deliver it. A referral given as an object is
   * first signed with the worker's key, as the app's backend signs every referral it produces,
   * unless it already names a `referral_signature` or `sign` is false (a forged event). A string is
   * sent byte for byte.
   */
  public async post(
    body: unknown,
    headers: Record<string, string> = {},
    options: { sign?: boolean } = {},
  ): Promise<{ statusCode: number; body: any }> {
    const sent = typeof body === 'string' || options.sign === false ? body : signWebhookBody(body, this.signingKey);
    const response = (await this.ingestHandler(
      httpApiEvent({
        headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json', ...headers },
        body: typeof sent === 'string' ? sent : JSON.stringify(sent),
      }),
    )) as APIGatewayProxyStructuredResultV2;
    return { statusCode: response.statusCode ?? 0, body: JSON.parse(String(response.body)) };
  }

  /** The key the worker checks referral signatures with (REFERRAL_SIGNING_KEY), the one `post` signs with. */
  public get signingKey(): string {
    return this.env.REFERRAL_SIGNING_KEY?.trim() || TEST_REFERRAL_SIGNING_KEY;
  }

  /** Runs the worker until the queue is empty and nothing is in flight (failed records come back after the visibility timeout). */
  public async drain(timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const received = await this.poller.pollOnce(0);
      if (received > 0) continue;
      const depth = await this.depth(this.resources.queueUrl);
      if (depth.visible + depth.inFlight === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('queue did not drain in time');
  }

  public depth(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
    return queueDepth(this.sqs, queueUrl);
  }

  /** Every message now in the DLQ (received and left in flight, so call once per check). */
  public async deadLetters(): Promise<Message[]> {
    const messages: Message[] = [];
    for (;;) {
      const result = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.resources.deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 30,
          MessageAttributeNames: ['All'],
        }),
      );
      if (!result.Messages?.length) return messages;
      messages.push(...result.Messages);
    }
  }

  /** What an operator's `npm run ops -- redrive --local` does (ops/redrive.ts, copy mode): how many it moved. */
  public async redrive(): Promise<number> {
    const target = {
      sqs: this.sqs,
      queueUrl: this.resources.queueUrl,
      deadLetterQueueUrl: this.resources.deadLetterQueueUrl,
      emulated: true,
    };
    const result = await redrive(target, { method: 'copy' });
    if (result.status !== 'COMPLETED') throw new Error(`redrive failed: ${result.error ?? result.status}`);
    return result.moved;
  }

  /**
   * One run of the deployed reconciler handler against the fake PostHog's Query API, with the
   * functions' environment plus `env` (RECONCILE_FROM and friends).
   */
  public async reconcile(env: Env, options: { now?: () => number; pageSize?: number } = {}): Promise<ReconcileResult> {
    const handler = makeReconcileHandler({
      sqs: this.sqs,
      ddb: this.ddb,
      config: async () => loadReconcilerConfig({ ...this.env, ...this.posthog.queryEnv, ...env }),
      ...options,
    });
    return handler();
  }

  public record(eventId: string): Promise<LedgerRecord | undefined> {
    return this.ledger.get(eventId);
  }

  /** Cards on the fake shop whose note names this referral. */
  public cardsFor(eventId: string) {
    return this.shopify.cards.filter((card) => card.note?.includes(eventId));
  }

  public async stop(): Promise<void> {
    await this.poller.stop();
    await this.stack.stop();
  }
}

/**
 * A PostHog default-template body for a fresh referral, unsigned: `post` signs it as it is when
 * sent, so a test may still change it first (signedProperties for an event captured into PostHog).
 */
export function referralBody(overrides: { uuid?: string; referrer?: string; redeemer?: string; withPerson?: boolean } = {}) {
  const uuid = overrides.uuid ?? randomUUID();
  const redeemer = overrides.redeemer ?? `redeemer-${uuid.slice(0, 8)}@example.com`;
  const body: Record<string, unknown> = {
    event: {
      uuid,
      event: 'referral redeemed',
      distinct_id: redeemer,
      properties: { referrer_email: overrides.referrer ?? `referrer-${uuid.slice(0, 8)}@example.com`, redeemer_email: redeemer },
      elements_chain: '',
      timestamp: new Date().toISOString(),
      url: `https://us.posthog.com/project/1/events/${uuid}`,
    },
  };
  if (overrides.withPerson !== false) {
    body.person = { id: randomUUID(), name: redeemer, url: 'https://us.posthog.com/person/x', properties: { email: redeemer } };
  }
  return { uuid, redeemer, body };
}

/**
 * A referral body's event properties with the signature the app's backend would add before
 * capturing it straight into PostHog (the reconciler's path, no webhook).
 */
export function signedProperties(body: Record<string, unknown>, key: string = TEST_REFERRAL_SIGNING_KEY): Record<string, unknown> {
  return (signWebhookBody(body, key).event as { properties: Record<string, unknown> }).properties;
}

/**
 * fetch whose requests are aborted (TimeoutError, as the clients' own timeout) after `timeoutMs`.
 * Not AbortSignal.any([init.signal, AbortSignal.timeout(ms)]): on Node 20 the timeout signal is
 * only weakly held by the combined one, so after a GC its abort never fires and the request hangs.
 */
function fetchTimingOutAfter(timeoutMs: number): typeof fetch {
  return (input, init) => {
    const controller = new AbortController();
    const outer = init?.signal ?? undefined;
    const onOuterAbort = () => controller.abort(outer?.reason);
    // Left running after the answer on purpose: it also bounds reading the body, and aborting then is a no-op.
    setTimeout(() => {
      outer?.removeEventListener('abort', onOuterAbort);
      controller.abort(new DOMException(`no response within ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    if (outer?.aborted) onOuterAbort();
    else outer?.addEventListener('abort', onOuterAbort, { once: true });
    return fetch(input, { ...init, signal: controller.signal });
  };
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run integration tests through jest (tests/support/global-setup.mjs)`);
  return value;
}
