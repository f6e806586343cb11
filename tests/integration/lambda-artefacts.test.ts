/**
 * What we deploy is what we test: the zips `serverless package --stage ci` builds, run as Lambda
 * runs them. Each function's zip is unpacked into an empty temp folder (no node_modules, no
 * TypeScript: only what the zip carries) and its handler, found from the template's `Handler`
 * and `Code`, is required and called in a child `node` process, with the function's environment
 * from the template. That catches what the TypeScript tests cannot: a runtime require() esbuild
 * left for a file `package.patterns` must carry, a handler path that names no file, a setting
 * the template never gives the function.
 *
 * The children reach only loopback: the emulators (fauxqs, dynalite, through the SDK's
 * AWS_ENDPOINT_URL_<SERVICE> variables), and the sandbox Shopify, Customer.io and PostHog. In
 * AWS each function reads its secret from Secrets Manager (SECRET_ID); without SECRET_ID
 * lib/infra/secrets.ts takes the same keys from the environment, so the template's SECRET_ID is
 * left out and the secrets are given as env. tests/support/loopback-only.cjs stops the child at
 * any other connection, so a forgotten setting fails here instead of calling out.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { documentClient } from '../../lib/infra/aws-clients';
import { httpApiEvent } from '../../local/apigw';
import { loadInfraDefinitions } from '../../local/infra';
import { SqsPoller } from '../../local/poller';
import { createStackResources, type StackResources } from '../../local/resources';
import { startFakeCustomerIo, type FakeCustomerIo } from '../../local/sandbox/customerio';
import { startFakePostHog, type FakePostHog } from '../../local/sandbox/posthog';
import { startFakeShopify, type FakeShopify } from '../../local/sandbox/shopify';
import { referralBody as unsignedReferralBody } from '../support/pipeline';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';
import { signWebhookBody } from '../../local/vouch';

/** A referral as the app captures it: signed with the worker's key, so the packaged worker (signatures required) pays it. */
const referralBody = (...args: Parameters<typeof unsignedReferralBody>): ReturnType<typeof unsignedReferralBody> => {
  const referral = unsignedReferralBody(...args);
  return { ...referral, body: signWebhookBody(referral.body, TEST_REFERRAL_SIGNING_KEY) };
};
import { PACKAGE_TIMEOUT_MS, sharedPackage, type Template } from '../support/serverless-package';

const run = promisify(execFile);

const RUNNER = join(__dirname, '..', 'support', 'lambda-zip-runner.cjs');
const LOOPBACK_ONLY = join(__dirname, '..', 'support', 'loopback-only.cjs');

/** The functions serverless.yml deploys, by their logical id in the template. */
const FUNCTIONS = {
  ingest: 'IngestLambdaFunction',
  worker: 'WorkerLambdaFunction',
  release: 'ReleaseLambdaFunction',
  reconcile: 'ReconcileLambdaFunction',
  referralCodes: 'ReferralCodesLambdaFunction',
} as const;
type FunctionName = keyof typeof FUNCTIONS;

// Long test secrets: the settings refuse short ones.
const WEBHOOK_SECRET = 'artefact-test-webhook-secret-0123456789abcdef';
const SHOPIFY_APP = {
  clientId: 'artefact-test-shopify-client-id-0123456789',
  clientSecret: 'artefact-test-shopify-client-secret-0123456789',
};
const CUSTOMERIO = { siteId: 'artefact-test-customerio-site-id-0123456789', apiKey: 'artefact-test-customerio-api-key-0123456789' };
const POSTHOG = {
  apiKey: 'phc_artefact_test_project_key_0123456789abcdef',
  personalApiKey: 'phx_artefact_test_personal_key_0123456789abcdef',
};

interface Unpacked {
  dir: string;
  handler: string;
  timeoutSeconds: number;
  variables: Record<string, unknown>;
}

type Invocation<T> = { ok: true; value: T } | { ok: false; error: { name?: string; message?: string; reason?: string } };

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run integration tests through jest (tests/support/global-setup.mjs)`);
  return value;
}

describe('the packaged Lambda zips, run as Lambda runs them', () => {
  const unpacked = {} as Record<FunctionName, Unpacked>;
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  const sqs = new SQSClient({ endpoint: requireEnv('TEST_SQS_ENDPOINT'), region: 'us-east-1', credentials });
  const dynamo = new DynamoDBClient({ endpoint: requireEnv('TEST_DYNAMODB_ENDPOINT'), region: 'us-east-1', credentials });
  const ddb = documentClient(dynamo);
  const defs = loadInfraDefinitions();
  let shopify: FakeShopify;
  let customerio: FakeCustomerIo;
  let posthog: FakePostHog;

  beforeAll(async () => {
    const { outDir, template } = await sharedPackage();
    await Promise.all(
      (Object.keys(FUNCTIONS) as FunctionName[]).map(async (name) => (unpacked[name] = await unpack(outDir, template, name))),
    );
    shopify = await startFakeShopify({ clientCredentials: SHOPIFY_APP });
    customerio = await startFakeCustomerIo(CUSTOMERIO);
    posthog = await startFakePostHog(POSTHOG);
  }, PACKAGE_TIMEOUT_MS + 30_000);

  afterAll(async () => {
    for (const { dir } of Object.values(unpacked)) rmSync(dir, { recursive: true, force: true });
    await Promise.all([shopify?.close(), customerio?.close(), posthog?.close()]);
    sqs.destroy();
    dynamo.destroy();
  });

  /** The function's zip (named by the template's Code.S3Key) unpacked into an empty folder that no node_modules can be found from. */
  async function unpack(outDir: string, template: Template, name: FunctionName): Promise<Unpacked> {
    const fn = template.Resources[FUNCTIONS[name]]?.Properties;
    if (!fn) throw new Error(`the template has no ${FUNCTIONS[name]}`);
    const dir = mkdtempSync(join(tmpdir(), `lambda-${name}-`));
    for (let parent = dir; parent !== dirname(parent); parent = dirname(parent)) {
      // Node resolves bare requires up the folder tree: a node_modules above would hide a missing file.
      if (existsSync(join(dirname(parent), 'node_modules')))
        throw new Error(`${dirname(parent)}/node_modules exists: the unpacked zip would not be alone`);
    }
    await run('unzip', ['-q', join(outDir, basename(String(fn.Code.S3Key))), '-d', dir]);
    return { dir, handler: String(fn.Handler), timeoutSeconds: Number(fn.Timeout ?? 6), variables: fn.Environment?.Variables ?? {} };
  }

  /** Fresh queue, DLQ and ledger table per test (as serverless.yml defines them), so the tests stay independent. */
  async function newStack(): Promise<StackResources & { ledger: Ledger }> {
    const resources = await createStackResources(sqs, dynamo, defs, {
      suffix: `-artefact-${randomUUID().slice(0, 8)}`,
      visibilityTimeoutSeconds: 1,
    });
    return { ...resources, ledger: new Ledger(ddb, resources.tableName) };
  }

  /**
   * The function's environment as the template gives it, its resources resolved to this stack,
   * plus what Lambda and Secrets Manager would add, all on loopback.
   */
  function lambdaEnv(name: FunctionName, stack: StackResources, extra: Record<string, string>): NodeJS.ProcessEnv {
    const refs: Record<string, string> = {
      RewardsQueue: stack.queueUrl,
      RewardsDeadLetterQueue: stack.deadLetterQueueUrl,
      LedgerTable: stack.tableName,
    };
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL_SQS: requireEnv('TEST_SQS_ENDPOINT'),
      AWS_ENDPOINT_URL_DYNAMODB: requireEnv('TEST_DYNAMODB_ENDPOINT'),
      // Any other AWS service lands on a closed loopback port (there should be none: no SECRET_ID, no metadata).
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_LAMBDA_FUNCTION_NAME: `referral-rewards-ci-${name}`,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    for (const [key, value] of Object.entries(unpacked[name].variables)) {
      if (typeof value === 'string') env[key] = value;
      else if (key === 'SECRET_ID')
        continue; // secrets as env instead (lib/infra/secrets.ts)
      else {
        const ref = (value as { Ref?: string }).Ref;
        if (!ref || !(ref in refs)) throw new Error(`${name}: no local value for ${key} = ${JSON.stringify(value)}`);
        env[key] = refs[ref];
      }
    }
    return { ...env, ...extra };
  }

  const workerSettings = (): Record<string, string> => ({
    // The worker secret's keys (SECRET_KEYS in lib/infra/config.ts), and the sandboxes' URLs.
    ...shopify.env,
    ...customerio.env,
    ...posthog.env,
    // The key the app's backend signs with; every referral here is signed with it (signed()).
    REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY,
  });

  /** Runs the unpacked zip's handler once per event in one child process (one warm container). */
  async function invoke<T>(
    name: FunctionName,
    stack: StackResources,
    events: unknown[],
    extra: Record<string, string> = {},
  ): Promise<Invocation<T>[]> {
    const { dir, handler, timeoutSeconds } = unpacked[name];
    const jobDir = mkdtempSync(join(tmpdir(), `lambda-${name}-job-`));
    const jobFile = join(jobDir, 'job.json');
    const resultFile = join(jobDir, 'result.json');
    writeFileSync(
      jobFile,
      JSON.stringify({ dir, handler, functionName: `referral-rewards-ci-${name}`, timeoutSeconds, events, resultFile }),
    );
    try {
      await run(process.execPath, ['--require', LOOPBACK_ONLY, RUNNER, jobFile], {
        cwd: dir,
        env: lambdaEnv(name, stack, extra),
        timeout: (timeoutSeconds + 15) * 1000,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      rmSync(jobDir, { recursive: true, force: true });
      throw new Error(`${name} zip (${handler}) did not run: ${(error as Error).message}\n${stderr}\n${stdout}`, { cause: error });
    }
    const results = JSON.parse(readFileSync(resultFile, 'utf8')) as Invocation<T>[];
    rmSync(jobDir, { recursive: true, force: true });
    return results;
  }

  /** What Lambda's SQS event source mapping does, invoking the worker zip for each batch until the queue is empty. */
  async function drainThroughWorker(stack: StackResources, extra: Record<string, string> = {}): Promise<Invocation<SQSBatchResponse>[]> {
    const invocations: Invocation<SQSBatchResponse>[] = [];
    const failures: unknown[] = [];
    const poller = new SqsPoller({
      sqs,
      queueUrl: stack.queueUrl,
      queueArn: stack.queueArn,
      batchSize: defs.worker.batchSize,
      timeoutMs: unpacked.worker.timeoutSeconds * 1000,
      handler: async (event: SQSEvent) => {
        const [result] = await invoke<SQSBatchResponse>('worker', stack, [event], { ...workerSettings(), ...extra });
        invocations.push(result!);
        if (!result!.ok) throw new Error(`worker invocation failed: ${JSON.stringify(result!.error)}`);
        return result!.value;
      },
      // The poller treats a thrown invocation as Lambda does (the batch comes back later); here it is the test's failure.
      onError: (error) => failures.push(error),
    });
    while ((await poller.pollOnce(0)) > 0);
    if (failures.length > 0) throw failures[0];
    return invocations;
  }

  const webhook = (body: unknown) =>
    httpApiEvent({
      headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('pays a webhook through the packaged ingest and worker: two gift cards on the shop and one Customer.io event', async () => {
    // Prepare
    const stack = await newStack();
    const referral = referralBody();

    // Act
    const answers = await invoke<{ statusCode: number; body: string }>('ingest', stack, [webhook(referral.body)], { WEBHOOK_SECRET });
    const batches = await drainThroughWorker(stack);

    // Assess
    expect(answers).toEqual([{ ok: true, value: expect.objectContaining({ statusCode: 202 }) }]);
    expect(JSON.parse((answers[0] as { value: { body: string } }).value.body)).toEqual({ status: 'queued', eventId: referral.uuid });
    expect(batches).toEqual([{ ok: true, value: { batchItemFailures: [] } }]);
    const record = await stack.ledger.get(referral.uuid);
    expect(record?.status).toBe('COMPLETED');
    const cards = shopify.cards.filter((card) => card.note?.includes(referral.uuid));
    expect(cards.map((card) => card.code).sort()).toEqual([record!.referrerCode, record!.redeemerCode].sort());
    const mailed = customerio.events.filter((event) => event.identifier === referral.redeemer);
    expect(mailed).toHaveLength(1);
    expect(mailed[0]).toMatchObject({
      name: 'pyramid_scheme_fulfillment',
      data: { discountreferrer: record!.referrerCode, discountreferee: record!.redeemerCode },
    });
  });

  it('reads the disposable-domain list the worker zip carries (package.patterns): a disposable redeemer waits in review, nothing issued', async () => {
    // Prepare
    const stack = await newStack();
    const referral = referralBody({ redeemer: `redeemer-${randomUUID().slice(0, 8)}@mailinator.com` });
    await invoke('ingest', stack, [webhook(referral.body)], { WEBHOOK_SECRET });

    // Act
    const batches = await drainThroughWorker(stack, { REVIEW_DISPOSABLE_EMAIL: 'true' });

    // Assess
    expect(batches).toEqual([{ ok: true, value: { batchItemFailures: [] } }]);
    expect(await stack.ledger.get(referral.uuid)).toMatchObject({ status: 'REVIEW', reviewReasons: ['disposable_email'] });
    expect(shopify.cards.filter((card) => card.note?.includes(referral.uuid))).toEqual([]);
    expect(customerio.events.filter((event) => event.identifier === referral.redeemer)).toEqual([]);
  });

  it('releases a held referral through the packaged releaser, and the worker then pays it', async () => {
    // Prepare: the worker zip holds the referral for a second
    const stack = await newStack();
    const referral = referralBody();
    await invoke('ingest', stack, [webhook(referral.body)], { WEBHOOK_SECRET });
    await drainThroughWorker(stack, { REWARD_HOLD: '1s' });
    const held = await stack.ledger.get(referral.uuid);
    expect(held?.status).toBe('HELD');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(held!.releaseAt) - Date.now()) + 50));

    // Act
    const runs = await invoke<{ released: number; reviewOverADay: number }>('release', stack, [{}]);
    await drainThroughWorker(stack, { REWARD_HOLD: '1s' });

    // Assess
    expect(runs).toEqual([{ ok: true, value: { released: 1, reviewOverADay: 0 } }]);
    expect((await stack.ledger.get(referral.uuid))?.status).toBe('COMPLETED');
    expect(shopify.cards.filter((card) => card.note?.includes(referral.uuid))).toHaveLength(2);
    expect(customerio.events.filter((event) => event.identifier === referral.redeemer)).toHaveLength(1);
  });

  it("answers a referrer's code through the packaged referral-codes zip, and the packaged worker pays a referral naming only that code", async () => {
    // Prepare
    const stack = await newStack();
    const APP_API_KEY = 'artefact-test-app-api-key-0123456789abcdef';
    const owner = `owner-${randomUUID().slice(0, 8)}@example.com`;
    const ask = httpApiEvent({
      path: '/referral-codes',
      headers: { authorization: `Bearer ${APP_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: owner }),
    });

    // Act
    const [answer] = await invoke<{ statusCode: number; body: string }>('referralCodes', stack, [ask], { APP_API_KEY });
    const { code, link } = JSON.parse((answer as { value: { body: string } }).value.body) as { code: string; link: string };
    const referral = unsignedReferralBody();
    const properties = (referral.body.event as { properties: Record<string, unknown> }).properties;
    delete properties.referrer_email;
    properties.referral_code = code;
    await invoke('ingest', stack, [webhook(signWebhookBody(referral.body, TEST_REFERRAL_SIGNING_KEY))], { WEBHOOK_SECRET });
    await drainThroughWorker(stack);

    // Assess
    expect(answer).toMatchObject({ ok: true, value: { statusCode: 200 } });
    expect(link).toBe(`https://app.example.com/signup?ref=${code}`);
    expect(await stack.ledger.get(referral.uuid)).toMatchObject({ status: 'COMPLETED', referrerEmail: owner });
    expect(shopify.cards.filter((card) => card.note?.includes(referral.uuid))).toHaveLength(2);
  });

  it("queues, through the packaged reconciler, a referral PostHog's Query API has and the ledger lacks, and the worker pays it", async () => {
    // Prepare: a referral the app captured half an hour ago whose webhook never arrived
    const stack = await newStack();
    const referral = referralBody();
    const event = referral.body.event as { uuid: string; distinct_id: string; properties: Record<string, unknown> };
    posthog.record({
      uuid: event.uuid,
      event: 'referral redeemed',
      distinctId: event.distinct_id,
      properties: event.properties,
      timestamp: new Date(Date.now() - 30 * 60_000).toISOString(),
      personEmail: referral.redeemer,
    });

    // Act
    const runs = await invoke<{ status: string; queued: number }>('reconcile', stack, [{}], {
      ...posthog.queryEnv,
      RECONCILE_FROM: new Date(Date.now() - 2 * 3_600_000).toISOString(),
    });
    await drainThroughWorker(stack);

    // Assess
    expect(runs).toEqual([{ ok: true, value: expect.objectContaining({ status: 'done', queued: 1 }) }]);
    expect((await stack.ledger.get(referral.uuid))?.status).toBe('COMPLETED');
    expect(shopify.cards.filter((card) => card.note?.includes(referral.uuid))).toHaveLength(2);
    expect(customerio.events.filter((event) => event.identifier === referral.redeemer)).toHaveLength(1);
  });
});
