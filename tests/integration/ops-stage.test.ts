import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import type { SecretSource } from '../../lib/infra/secrets';
import { main, type CliIo } from '../../ops/cli';
import type { Target } from '../../ops/target';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * The lifecycle commands against a deployed stage (`--stage ci`, whose serverless.yml params name
 * `ci-example.myshopify.com`), on the emulators: the stage's credentials go only to the stage's
 * own https vendors, whatever this shell says, and a command reads the stage's worker secret
 * only when it must call Shopify.
 */
describe('ops lifecycle commands on a stage', () => {
  const STAGE_SHOP = 'https://ci-example.myshopify.com';
  const SHELL_KEYS = ['SHOPIFY_BASE_URL', 'SHOPIFY_STORE_DOMAIN', 'POSTHOG_HOST', 'CUSTOMERIO_TRACK_URL', 'POSTHOG_API_KEY'] as const;
  const savedShell = Object.fromEntries(SHELL_KEYS.map((key) => [key, process.env[key]]));
  let pipeline: Pipeline;
  let listener: Server;
  let heard: string[];
  let outbound: string[];
  let secrets: SecretSource & { get: jest.Mock };

  beforeEach(async () => {
    heard = [];
    listener = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        heard.push(`${request.method} ${request.url} ${body}`);
        response.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    // What the README suggests for `npm start`, left over in the operator's shell.
    process.env.SHOPIFY_BASE_URL = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
    process.env.POSTHOG_HOST = process.env.SHOPIFY_BASE_URL;
    process.env.CUSTOMERIO_TRACK_URL = process.env.SHOPIFY_BASE_URL;
    secrets = {
      get: jest.fn(async () => ({
        SHOPIFY_CLIENT_ID: 'stage-client-id',
        SHOPIFY_CLIENT_SECRET: 'stage-client-secret-never-off-https',
        CUSTOMERIO_SITE_ID: 'site',
        CUSTOMERIO_API_KEY: 'stage-customerio-key',
        POSTHOG_API_KEY: 'phc_stage',
      })),
    };
    // Nothing leaves the machine: a request to anywhere but loopback is recorded and refused (401).
    outbound = [];
    const realFetch = globalThis.fetch;
    jest.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (/^https?:\/\/127\.0\.0\.1[:/]/.test(url)) return realFetch(input, init);
      outbound.push(`${init?.method ?? 'GET'} ${url} ${typeof init?.body === 'string' ? init.body : ''}`);
      if (url.startsWith('https://us.i.posthog.com/')) return new Response('{"status":"Ok"}', { status: 200 });
      return new Response('{"errors":"unauthorized"}', { status: 401, headers: { 'content-type': 'application/json' } });
    });
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await pipeline?.stop();
    await new Promise((resolve) => listener.close(resolve));
    for (const key of SHELL_KEYS) {
      if (savedShell[key] === undefined) delete process.env[key];
      else process.env[key] = savedShell[key];
    }
  });

  /** The pipeline's emulators, opened as `--stage ci` would open AWS. */
  const stageTarget = (): Target => ({
    description: 'stage ci (emulated for the test)',
    emulated: false,
    sqs: pipeline.sqs,
    ddb: pipeline.ddb,
    queueUrl: pipeline.resources.queueUrl,
    deadLetterQueueUrl: pipeline.resources.deadLetterQueueUrl,
    tableName: pipeline.resources.tableName,
    secrets,
    close: () => undefined,
  });

  async function ops(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text) };
    const code = await main([...argv, '--stage', 'ci'], io, async () => stageTarget());
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  }

  const recordOf = async (uuid: string) => (await pipeline.record(uuid)) as LifecycleRecord | undefined;

  it("sends the stage's Shopify client secret only to the stage's shop over https, never to a URL left in the shell", async () => {
    // Prepare: a paid referral
    pipeline = await Pipeline.start();
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();

    // Act
    const result = await ops('revoke', uuid, '--reason', 'fraud');

    // Assess: the grant went to the stage's shop (refused there by this test), nothing to the listener
    expect(heard).toEqual([]);
    expect(outbound).toEqual([expect.stringMatching(new RegExp(`^POST ${STAGE_SHOP}/admin/oauth/access_token `))]);
    expect(outbound[0]).toContain('stage-client-secret-never-off-https');
    expect(result.code).toBe(1);
    expect(secrets.get).toHaveBeenCalledTimes(1);
    expect(secrets.get).toHaveBeenCalledWith('referral-rewards/ci/worker', expect.anything());
  });

  it('decides a review with no vendor secret read: list, approve and reject', async () => {
    // Prepare: a daily budget below one referral's two rewards sends every referral to review
    pipeline = await Pipeline.start({ env: { PROGRAM_DAILY_BUDGET: '10' } });
    const approved = referralBody();
    const rejected = referralBody();
    await pipeline.post(approved.body);
    await pipeline.post(rejected.body);
    await pipeline.drain();

    // Act
    const listed = await ops('review', 'list', '--json');
    const approve = await ops('review', 'approve', approved.uuid);
    const reject = await ops('review', 'reject', rejected.uuid, '--reason', 'looks farmed');

    // Assess
    expect([listed.code, approve.code, reject.code]).toEqual([0, 0, 0]);
    expect((JSON.parse(listed.stdout) as { eventId: string }[]).map((item) => item.eventId).sort()).toEqual(
      [approved.uuid, rejected.uuid].sort(),
    );
    expect((await recordOf(rejected.uuid))?.status).toBe('REJECTED');
    expect(secrets.get).not.toHaveBeenCalled();
    expect([heard, outbound]).toEqual([[], []]);
    expect(reject.stderr).toContain('PostHog: outcome not captured');
  });

  it("captures a rejection with the project key from the shell, at the stage's PostHog host, not the shell's", async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { PROGRAM_DAILY_BUDGET: '10' } });
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();
    process.env.POSTHOG_API_KEY = 'phc_from_the_shell';

    // Act
    const reject = await ops('review', 'reject', uuid, '--reason', 'looks farmed');

    // Assess
    expect(reject.code).toBe(0);
    expect(heard).toEqual([]);
    expect(outbound).toEqual([expect.stringMatching(/^POST https:\/\/us\.i\.posthog\.com\/.*phc_from_the_shell/)]);
    expect(secrets.get).not.toHaveBeenCalled();
  });

  it('cancels a held referral with no vendor secret read', async () => {
    // Prepare
    pipeline = await Pipeline.start({ env: { REWARD_HOLD: '1h' } });
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();

    // Act
    const result = await ops('revoke', uuid, '--reason', 'order returned');

    // Assess
    expect(result.code).toBe(0);
    expect((await recordOf(uuid))?.status).toBe('REVOKED');
    expect(secrets.get).not.toHaveBeenCalled();
    expect([heard, outbound]).toEqual([[], []]);
  });
});
