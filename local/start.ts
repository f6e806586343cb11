/**
 * `npm start`: the whole pipeline on this machine, on loopback only (every socket is read back
 * after it listens; with real Shopify or Customer.io credentials a wider one stops the stack).
 *
 *   POST http://127.0.0.1:3000/webhooks/posthog
 *     → API Gateway v2 event → functions/ingest.handler → SQS (fauxqs)
 *     → SqsPoller (Lambda's event source mapping) → functions/worker.handler
 *     → DynamoDB ledger (dynalite) + Shopify + Customer.io (fake sandboxes unless configured)
 *
 * The handlers are the deployed ones, unchanged: they read their configuration from process.env,
 * so everything is put there first and the handler modules are imported only afterwards. For the
 * same reason one process can hold one local stack: the handlers are module singletons.
 *
 * This file wires the stack together; the parts the tests and the bench assemble too are
 * ./stack.ts, the API Gateway server ./gateway.ts, the releaser and the DLQ watch ./loops.ts, the
 * handler loading ./handlers.ts, everything printed ./output.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { relative as relativePath, resolve as resolvePath } from 'node:path';
import {
  loadCustomerIoConfig,
  loadPostHogCaptureConfig,
  loadReleaserConfig,
  loadShopifyConfig,
  loadWorkerConfig,
} from '../lib/infra/config';
import { maskCode } from '../lib/infra/mask';
import { startGateway, type IngestHandler, type ReferralCodesHandler } from './gateway';
import { loadReferralCodesConfig } from '../lib/infra/config-referral-codes';
import { forgetModulesUnder, pickHandler } from './handlers';
import { startReleaser, watchDeadLetterQueue } from './loops';
import { printBanner, printCard, printEvent, printRefusal, say } from './output';
import type { SqsHandler } from './poller';
import type { FakeCustomerIo } from './sandbox/customerio';
import type { FakeShopify, FakeShopifyOptions } from './sandbox/shopify';
import { assembleStack, REGION, workerPoller } from './stack';
import { restoreRateSetting, sizeForShop } from '../lib/infra/shop-sizing';
import { parseDuration } from '../lib/infra/duration';
import { localStateDir, stackFilePath, type LocalStackFile } from './state';
import type { EmulatorsModule } from './emulators-types';
import { releaserDeps } from '../lib/infra/wiring';
import { lostReferralCurl, prepareLocalReconciler, recordDelivered } from './reconcile-loop';
import { exposureProblem, realVendors, type BoundAddress, type RealVendor } from './loopback';
import { signWebhookBody } from './vouch';
import { Ledger } from '../lib/adapters/dynamodb/ledger';
import { parseReferral } from '../lib/domain/referral';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';

export interface LocalStackOptions {
  /** Port for the webhook server on 127.0.0.1; 0 picks a free one. Default: $PORT, else 3000. */
  port?: number;
  /** Extra environment, applied to process.env before anything reads it (same names as the deployed functions). */
  env?: Record<string, string>;
}

export interface LocalStack {
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  webhookSecret: string;
  /** Present when the fake Shopify is in use. */
  shopify?: FakeShopify;
  /** Present when the fake Customer.io is in use. */
  customerio?: FakeCustomerIo;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const env = process.env;
  Object.assign(env, options.env ?? {});
  // The SDK's "Node 22 will be required from 2027" notice says nothing about this stack.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const port = options.port ?? (env.PORT ? Number(env.PORT) : 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${env.PORT}`);

  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const stop = async (): Promise<void> => {
    while (cleanups.length > 0) {
      const cleanup = cleanups.pop()!;
      try {
        await cleanup();
      } catch (error) {
        say(`⚠️  while stopping: ${(error as Error)?.message ?? String(error)}`);
      }
    }
  };

  try {
    // 1. AWS emulators.
    // fauxqs is ESM only: a computed specifier keeps this a native import() in this CommonJS file.
    const emulatorsModule = './emulators.mjs';
    const { startEmulators } = (await import(emulatorsModule)) as EmulatorsModule;
    const emulators = await startEmulators();
    cleanups.push(() => emulators.stop());

    // The handlers' SDK clients find the emulators through these; nothing can reach real AWS.
    env.AWS_ENDPOINT_URL_SQS = emulators.sqsEndpoint;
    env.AWS_ENDPOINT_URL_DYNAMODB = emulators.dynamoEndpoint;
    env.AWS_ACCESS_KEY_ID = 'local';
    env.AWS_SECRET_ACCESS_KEY = 'local';
    delete env.AWS_SESSION_TOKEN;
    delete env.AWS_PROFILE;
    env.AWS_REGION = REGION;
    env.AWS_DEFAULT_REGION = REGION;
    env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
    env.POWERTOOLS_METRICS_DISABLED ??= 'true';
    // serverless.yml sets LOG_LEVEL; the logger reads POWERTOOLS_LOG_LEVEL first, so default only that.
    if (!env.LOG_LEVEL) env.POWERTOOLS_LOG_LEVEL ??= 'INFO';
    env.POWERTOOLS_SERVICE_NAME ??= 'referral-rewards';
    // As Lambda sets it: the logger then reports the first invocation as cold_start: true.
    env.AWS_LAMBDA_INITIALIZATION_TYPE ??= 'on-demand';
    // Locally the secrets come from env vars (lib/infra/secrets.ts): a SECRET_ID would send the
    // handlers to Secrets Manager, which is not emulated here.
    const ignoredSecretId = env.SECRET_ID;
    delete env.SECRET_ID;

    // 2. The stack the tests and the bench assemble too (./stack.ts): the resources serverless.yml
    // defines (stage "local"), and the Shopify and Customer.io fakes unless credentials or a URL
    // override point elsewhere.
    const shopifyVars = ['SHOPIFY_STORE_DOMAIN', 'SHOPIFY_ACCESS_TOKEN', 'SHOPIFY_BASE_URL', 'SHOPIFY_CLIENT_ID', 'SHOPIFY_CLIENT_SECRET'];
    const sandboxShopify = !shopifyVars.some((name) => env[name]?.trim());
    const sandboxCustomerIo = !(env.CUSTOMERIO_SITE_ID?.trim() || env.CUSTOMERIO_API_KEY?.trim() || env.CUSTOMERIO_TRACK_URL?.trim());
    const stack = await assembleStack({
      endpoints: emulators,
      shopify: sandboxShopify ? sandboxShopifyOptions(env) : false,
      customerio: sandboxCustomerIo ? { port: 0, onEvent: printEvent } : false,
    });
    cleanups.push(() => stack.stop());
    const { sqs, defs, resources, shopify, customerio } = stack;
    // The stack's env is the functions' own: resources, and the sandboxes' URLs and credentials.
    Object.assign(env, stack.env);
    cleanups.push(muteInvalidQueueUrlWarnings([resources.queueUrl, resources.deadLetterQueueUrl]));

    // The key the app's backend signs referrals with (lib/domain/vouch.ts): generated and saved like
    // the webhook secret, for send-sample and the banner's signed sample. Before the worker's config is read: it requires one.
    const signingKey = localSecret(env, 'REFERRAL_SIGNING_KEY', 'referral-signing-key', () => randomBytes(32).toString('base64url'));
    const signedSampleFile = writeSignedSample(signingKey.value);

    // Half-set credentials would otherwise fail every referral into the DLQ; say so now instead.
    let workerConfig: ReturnType<typeof loadWorkerConfig>;
    try {
      workerConfig = loadWorkerConfig(env);
    } catch (error) {
      const message = (error as Error).message;
      const hint = /SHOPIFY_|CUSTOMERIO_/.test(message)
        ? '\n   Set the SHOPIFY_* / CUSTOMERIO_* variables completely, or unset them all to use the sandboxes.'
        : '';
      throw new Error(`${message}${hint}`, { cause: error });
    }

    // The reconciler (off unless RECONCILE_FROM is set), with the sandbox PostHog's Query API.
    const reconciler = await prepareLocalReconciler(env, say);
    cleanups.push(() => reconciler.stop());

    // Every socket so far, read back from the operating system before anything consumes the
    // queue; the webhook server's is added once it listens (local/loopback.ts says why).
    const vendors = realVendors({ shopifyUrl: workerConfig.shopify.baseUrl, customerIoUrl: workerConfig.customerio.trackUrl });
    const listening: BoundAddress[] = [
      ...emulators.listening(),
      ...(shopify ? [{ name: 'Shopify sandbox', ...shopify.listening() }] : []),
      ...(customerio ? [{ name: 'Customer.io sandbox', ...customerio.listening() }] : []),
      ...(reconciler.posthog ? [{ name: 'PostHog sandbox', ...reconciler.posthog.listening() }] : []),
    ];
    refuseExposure(listening, vendors);

    // A generated secret goes to the state dir (.local/ or $LOCAL_STATE_DIR) for `npm run send-sample`.
    const webhook = localSecret(env, 'WEBHOOK_SECRET', 'webhook-secret', () => randomBytes(24).toString('base64url'));
    const webhookSecret = webhook.value;
    // The app backend's key for POST /referral-codes, its own like the deployed function's secret.
    const appApiKey = localSecret(env, 'APP_API_KEY', 'app-api-key', () => randomBytes(32).toString('base64url'));
    env.REFERRAL_LINK ??= `http://127.0.0.1:${port || 3000}/signup?ref={code}`;
    // Refused now rather than as a 503 on the first request (a REFERRAL_LINK without {code}, a short key).
    loadReferralCodesConfig(env);

    // 3. Only now the handlers, exactly as deployed: their clients and logger read the env above.
    const handlerSources = [resolvePath(__dirname, '..', 'functions'), resolvePath(__dirname, '..', 'lib')];
    const ingest = pickHandler<IngestHandler>(await import('../functions/ingest'), 'functions/ingest');
    // On Lambda each function is its own bundle in its own container. Loading the worker with its
    // own copy of lib/ keeps it that way here: the worker's logger keeps the Lambda context it
    // adds, and ingest's logger (a separate instance again) must not print it.
    forgetModulesUnder(handlerSources);
    const worker = pickHandler<SqsHandler>(await import('../functions/worker'), 'functions/worker');
    forgetModulesUnder(handlerSources);
    const referralCodes = pickHandler<ReferralCodesHandler>(await import('../functions/referral-codes'), 'functions/referral-codes');
    // Its own copy of lib/ again, as its own Lambda bundle would have; only loaded when it runs.
    if (reconciler.enabled) {
      forgetModulesUnder(handlerSources);
      const reconcile = pickHandler<(event: unknown) => Promise<unknown>>(await import('../functions/reconcile'), 'functions/reconcile');
      reconciler.start(() => reconcile({}));
    }

    // 4. The worker's event source mapping.
    const poller = workerPoller(
      stack,
      async (event, context) => {
        const result = await worker(event, context);
        await printRefusals(stack.ledger, event, result);
        const failed = result?.batchItemFailures?.length ?? 0;
        if (failed > 0) {
          say(
            `↻  worker: ${failed} of ${event.Records.length} record(s) failed; SQS redelivers them when the worker set, by cause ` +
              `(seconds for a claim or lease wait, at most the ${defs.queue.attributes.VisibilityTimeout}s visibility timeout; DLQ after ${defs.queue.maxReceiveCount} receives)`,
          );
        }
        return result;
      },
      {
        functionName: 'worker',
        onError: (error) => say(`⚠️  worker invocation failed: ${(error as Error)?.message ?? String(error)}`),
      },
    );
    // As many batches at once as the deployed event source runs containers, by the same rule
    // (lib/infra/shop-sizing.ts, SHOPIFY_RESTORE_RATE). One process is one container here, so its
    // one Shopify pacer paces them all and takes the whole budget (WORKER_MAX_CONCURRENCY unset).
    const { maximumConcurrency } = sizeForShop({
      restoreRate: restoreRateSetting(env.SHOPIFY_RESTORE_RATE ?? 'standard'),
      batchSize: defs.worker.batchSize,
    });
    poller.start(maximumConcurrency);
    cleanups.push(() => poller.stop());

    // 4b. The releaser (functions/release.ts in AWS): held referrals whose time has come go back to the worker.
    cleanups.push(
      startReleaser(
        releaserDeps(
          loadReleaserConfig(env),
          {
            sqs,
            ddb: stack.ddb,
            customerio: async () => loadCustomerIoConfig(env),
            posthog: async () => loadPostHogCaptureConfig(env),
            shopify: async () => loadShopifyConfig(env),
          },
          { resendAfterMs: 30_000 },
        ),
      ),
    );

    // 5. The DLQ, watched: a permanent failure (or retries exhausted) lands there.
    const stopWatching = watchDeadLetterQueue(sqs, resources.deadLetterQueueUrl);
    cleanups.push(stopWatching);

    // 6. API Gateway: the HTTP server in front of ingest. With the catch-up on the sandbox PostHog,
    // what the webhook delivers is in that PostHog too: the catch-up finds redeemers by their referral event.
    const sandboxPostHog = reconciler.posthog;
    const catchUp = Boolean(env.QUALIFY_EVENT?.trim() || env.REVOKE_EVENT?.trim());
    const delivered: IngestHandler =
      sandboxPostHog && catchUp
        ? async (event) => {
            const result = await ingest(event);
            if ((result.statusCode ?? 200) < 300) recordDelivered(sandboxPostHog, event.body ?? '');
            return result;
          }
        : ingest;
    const gateway = await startGateway(delivered, port, referralCodes);
    cleanups.push(() => gateway.close());
    const url = gateway.url;
    listening.push({ name: 'webhook server', ...gateway.listening() });
    refuseExposure(listening, vendors);

    // 7. Where this stack's queues and ledger are, for `npm run ops -- <command> --local` (ops/target.ts).
    cleanups.push(
      writeStackFile({
        sqsEndpoint: emulators.sqsEndpoint,
        dynamoEndpoint: emulators.dynamoEndpoint,
        queueUrl: resources.queueUrl,
        deadLetterQueueUrl: resources.deadLetterQueueUrl,
        tableName: resources.tableName,
        region: REGION,
        ...(shopify ? { sandboxShopify: shopify.env } : {}),
        reconciler: reconciler.stackSettings,
        ...(env.QUALIFY_EVENT?.trim()
          ? {
              qualify: {
                event: env.QUALIFY_EVENT.trim(),
                ...(sandboxPostHog ? { capture: { url: sandboxPostHog.url, apiKey: sandboxPostHog.apiKey } } : {}),
              },
            }
          : {}),
      }),
    );

    printBanner({
      url,
      webhookSecret,
      secretGenerated: webhook.generated,
      secretFile: relativePath(process.cwd(), webhook.file),
      signingKey: signingKey.value,
      signingKeyGenerated: signingKey.generated,
      signingKeyFile: relativePath(process.cwd(), signingKey.file),
      appApiKey: appApiKey.value,
      appApiKeyGenerated: appApiKey.generated,
      appApiKeyFile: relativePath(process.cwd(), appApiKey.file),
      signatures: workerConfig.rules.referralSignatures.mode,
      signedSampleFile: relativePath(process.cwd(), signedSampleFile),
      shopify: shopify
        ? `sandbox (fake Admin API at ${shopify.url}; nothing leaves this machine)`
        : env.SHOPIFY_BASE_URL?.trim()
          ? `${workerConfig.shopify.baseUrl} (from SHOPIFY_BASE_URL)`
          : `⚠️  REAL store ${workerConfig.shopify.baseUrl}: these gift cards are real money`,
      shopifyAuth:
        workerConfig.shopify.auth.mode === 'client_credentials'
          ? `client credentials grant (Dev Dashboard app ${workerConfig.shopify.auth.clientId}; tokens renewed before they expire` +
            `${shopify && env.SANDBOX_SHOPIFY_TOKEN_TTL?.trim() ? `, sandbox tokens last ${env.SANDBOX_SHOPIFY_TOKEN_TTL.trim()}` : ''})`
          : 'static SHOPIFY_ACCESS_TOKEN (admin-created app)',
      shopifyApi: `API version ${workerConfig.shopify.apiVersion}`,
      customerio: customerio
        ? `sandbox (fake Track API at ${customerio.url}; no email is sent)`
        : env.CUSTOMERIO_TRACK_URL?.trim()
          ? `${workerConfig.customerio.trackUrl} (from CUSTOMERIO_TRACK_URL)`
          : `⚠️  REAL workspace via ${workerConfig.customerio.trackUrl}: campaigns may email real people`,
      queue: `${defs.queue.name}  (batch ${defs.worker.batchSize}, worker timeout ${defs.worker.timeoutSeconds}s, visibility ${defs.queue.attributes.VisibilityTimeout}s, DLQ after ${defs.queue.maxReceiveCount} receives)`,
      table: resources.tableName,
      reward: `${workerConfig.rewardAmount} per person, Customer.io event "${workerConfig.customerio.eventName}"`,
      reconciler: reconciler.description,
      qualify: env.QUALIFY_EVENT?.trim()
        ? {
            event: env.QUALIFY_EVENT.trim(),
            within: env.QUALIFY_WITHIN?.trim() || '30d',
            where: env.QUALIFY_WHERE?.trim() || undefined,
            catchUp: Boolean(sandboxPostHog),
          }
        : undefined,
      loseReferral: reconciler.posthog ? lostReferralCurl(reconciler.posthog, signingKey.value) : undefined,
      ignoredSecretId,
    });

    return { url, webhookSecret, shopify, customerio, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The Shopify sandbox as a Dev Dashboard app, as a shop set up today is: the worker gets its tokens
 * by the client credentials grant, and SANDBOX_SHOPIFY_TOKEN_TTL=5s shows them renewed.
 */
function sandboxShopifyOptions(env: NodeJS.ProcessEnv): FakeShopifyOptions {
  const ttl = env.SANDBOX_SHOPIFY_TOKEN_TTL?.trim();
  const tokenTtlMs = ttl ? parseDuration(ttl) : undefined;
  if (ttl && (tokenTtlMs === undefined || tokenTtlMs < 1000))
    throw new Error(`SANDBOX_SHOPIFY_TOKEN_TTL must be a duration of 1s or more like 5s, 15m or 24h, got ${ttl}`);
  return {
    port: 0,
    onCard: printCard,
    onDeactivate: (reward) => say(`🚫 ${reward.kind} ${maskCode(reward.code)} deactivated in the Shopify sandbox (revoked)`),
    clientCredentials: { clientId: 'sandbox-app', clientSecret: `shpss_${randomBytes(16).toString('hex')}`, tokenTtlMs },
  };
}

/** Throws (the stack then stops) when a socket is wider than loopback while real vendors are configured. */
function refuseExposure(listening: BoundAddress[], vendors: RealVendor[]): void {
  const problem = exposureProblem(listening, vendors);
  if (problem) throw new Error(problem);
}

/**
 * `name` from the env, or a random value generated now, put in the env and saved to the state dir
 * (.local/ or $LOCAL_STATE_DIR) as `file` for `npm run send-sample`.
 */
function localSecret(
  env: NodeJS.ProcessEnv,
  name: string,
  file: string,
  generate: () => string,
): { value: string; generated: boolean; file: string } {
  const path = resolvePath(localStateDir(), file);
  const given = env[name]?.trim() ?? '';
  if (given !== '') return { value: given, generated: false, file: path };
  const value = generate();
  env[name] = value;
  mkdirSync(localStateDir(), { recursive: true });
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return { value, generated: true, file: path };
}

/** The sample event signed with this run's key, for the banner's `curl` (the app signs every referral it sends). */
function writeSignedSample(key: string): string {
  const path = resolvePath(localStateDir(), 'signed-sample-event.json');
  const sample = JSON.parse(readFileSync(resolvePath(__dirname, 'sample-event.json'), 'utf8')) as unknown;
  mkdirSync(localStateDir(), { recursive: true });
  writeFileSync(path, `${JSON.stringify(signWebhookBody(sample, key), null, 2)}\n`);
  return path;
}

/**
 * One 🚫 line per record of the batch that the ledger holds as REJECTED (a refused referral, or a
 * duplicate of one): what a person trying `send-sample -- --unsigned` looks for. Local only.
 */
async function printRefusals(ledger: Ledger, event: SQSEvent, result: SQSBatchResponse | void): Promise<void> {
  const failed = new Set((result?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
  for (const record of event.Records) {
    if (failed.has(record.messageId)) continue;
    const eventId = parseReferral(record.body)?.eventId;
    const stored = eventId ? await ledger.get(eventId).catch(() => undefined) : undefined;
    if (eventId && stored?.status === 'REJECTED') printRefusal(eventId, stored.rejectionReason ?? 'unknown');
  }
}

/**
 * fauxqs names queues `http://sqs.us-east-1.127.0.0.1:<port>/…` (emulators.mjs passes host
 * 127.0.0.1, which fauxqs uses as a domain suffix). WHATWG URL refuses that host, so the SQS
 * client's queueUrlMiddleware console.warn()s a TypeError stack on every call made by a client
 * configured through AWS_ENDPOINT_URL_SQS (the handlers'), then carries on with that endpoint.
 * Harmless, but it would bury the output: only that exact warning, for our queues, is dropped.
 */
function muteInvalidQueueUrlWarnings(queueUrls: string[]): () => void {
  const original = console.warn;
  console.warn = (...args: unknown[]): void => {
    const first = args[0] as { code?: unknown; input?: unknown } | undefined;
    if (args.length === 1 && first?.code === 'ERR_INVALID_URL' && queueUrls.includes(String(first.input))) return;
    original.apply(console, args);
  };
  return () => {
    console.warn = original;
  };
}

/** Writes .local/stack.json; the returned cleanup removes it, unless another stack has written its own since. */
function writeStackFile(stack: LocalStackFile): () => void {
  const file = stackFilePath();
  const text = `${JSON.stringify(stack, null, 2)}\n`;
  mkdirSync(localStateDir(), { recursive: true });
  writeFileSync(file, text);
  return () => {
    try {
      if (readFileSync(file, 'utf8') === text) rmSync(file);
    } catch {
      // Already gone.
    }
  };
}

async function main(): Promise<void> {
  let stack: LocalStack;
  try {
    stack = await startLocalStack();
  } catch (error) {
    process.stderr.write(`\n❌ the local stack could not start: ${(error as Error)?.message ?? String(error)}\n`);
    process.exit(1);
  }
  let stoppingSince: number | undefined;
  const shutdown = (signal: string): void => {
    if (stoppingSince !== undefined) {
      // Ctrl+C reaches npm, tsx and this process at once, and tsx relays it too: a repeat within
      // a moment is that echo, not a person insisting.
      if (Date.now() - stoppingSince < 2_000) return;
      say(`\n${signal} again: exiting without waiting.`);
      process.exit(1);
    }
    stoppingSince = Date.now();
    say(
      `\n${signal}: stopping (an in-flight worker batch is allowed to finish; ${signal === 'SIGINT' ? 'Ctrl+C again' : 'signal again'} to force)…`,
    );
    stack.stop().then(
      () => {
        say('stopped.');
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`could not stop cleanly: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

if (require.main === module) void main();
