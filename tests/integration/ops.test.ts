import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { maskCode, maskEmail } from '../../lib/infra/mask';
import { main, type CliIo } from '../../ops/cli';
import type { LocalStackFile } from '../../ops/target';
import { Pipeline, referralBody } from '../support/pipeline';

/**
 * The on-call loop, end to end on the emulators and through the real CLI (`--local`, as
 * against `npm start`): a referral fails for good, `dlq list` shows why, `status` shows where
 * it stopped, the cause is fixed, `redrive` sends it back, and it is paid exactly once.
 */
describe('ops CLI on the local stack', () => {
  let pipeline: Pipeline;
  let stateDir: string;
  const savedStateDir = process.env.LOCAL_STATE_DIR;

  beforeEach(async () => {
    pipeline = await Pipeline.start();
    stateDir = mkdtempSync(join(tmpdir(), 'referral-rewards-ops-'));
    const stack: LocalStackFile = {
      sqsEndpoint: process.env.TEST_SQS_ENDPOINT!,
      dynamoEndpoint: process.env.TEST_DYNAMODB_ENDPOINT!,
      queueUrl: pipeline.resources.queueUrl,
      deadLetterQueueUrl: pipeline.resources.deadLetterQueueUrl,
      tableName: pipeline.resources.tableName,
      region: 'us-east-1',
    };
    writeFileSync(join(stateDir, 'stack.json'), JSON.stringify(stack));
    process.env.LOCAL_STATE_DIR = stateDir;
  });

  afterEach(async () => {
    await pipeline?.stop();
    rmSync(stateDir, { recursive: true, force: true });
    if (savedStateDir === undefined) delete process.env.LOCAL_STATE_DIR;
    else process.env.LOCAL_STATE_DIR = savedStateDir;
  });

  async function ops(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { stdout: (text) => out.push(text), stderr: (text) => err.push(text) };
    const code = await main([...argv, '--local'], io);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  }

  const json = async (...argv: string[]) => {
    const result = await ops(...argv, '--json');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout);
  };

  it('shows a dead-lettered referral, redrives it once fixed, and it is paid exactly once', async () => {
    // Prepare: Shopify rejects the token, so the referral fails for good
    pipeline.shopify.setFaultPolicy(() => 'unauthorized');
    const referrer = 'Referrer.Person@Example.com';
    const { uuid, redeemer, body } = referralBody({ referrer });
    await pipeline.post(body);
    await pipeline.drain();
    const failed = (await pipeline.record(uuid))!;

    // Act + Assess: dlq list, machine-readable and for people
    const listing = await json('dlq', 'list');
    expect(listing.messages).toHaveLength(1);
    expect(listing.messages[0]).toMatchObject({ eventId: uuid, failureReason: 'shopify_auth', ledger: { status: 'FAILED' } });
    expect(listing.messages[0].failureMessage).toEqual(expect.any(String));
    expect(Date.parse(listing.messages[0].failedAt)).not.toBeNaN();
    const listed = await ops('dlq', 'list');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(uuid);
    expect(listed.stdout).toContain('shopify_auth');
    expect(listed.stdout).toContain(maskEmail(redeemer));
    expect(listed.stdout).not.toContain(redeemer);
    // Listing took nothing out: the message is visible again for the redrive
    expect(await pipeline.depth(pipeline.resources.deadLetterQueueUrl)).toEqual({ visible: 1, inFlight: 0 });

    // status: FAILED, masked, no full code anywhere
    const status = await ops('status', uuid);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('FAILED');
    expect(status.stdout).toContain('shopify_auth');
    expect(status.stdout).toContain(maskEmail(redeemer));
    expect(status.stdout).not.toContain(redeemer);
    expect(status.stdout.toLowerCase()).not.toContain(referrer.toLowerCase());
    for (const code of [failed.referrerCode, failed.redeemerCode]) {
      expect(code).toBeTruthy();
      expect(status.stdout).not.toContain(code);
      expect(status.stdout).toContain(maskCode(code));
    }
    const failedReport = await json('status', uuid);
    expect(failedReport).toMatchObject({ found: true, status: 'FAILED', failureReason: 'shopify_auth' });
    expect(JSON.stringify(failedReport)).not.toContain(failed.referrerCode);

    // The operator fixes the token and redrives: fauxqs has no StartMessageMoveTask, so the copy fallback
    pipeline.shopify.setFaultPolicy(undefined);
    const redriven = await json('redrive');
    expect(redriven).toMatchObject({ method: 'copy', status: 'COMPLETED', moved: 1, failed: 0 });
    expect(redriven.fallbackReason).toContain('StartMessageMoveTask');
    expect(await pipeline.depth(pipeline.resources.deadLetterQueueUrl)).toEqual({ visible: 0, inFlight: 0 });

    await pipeline.drain();

    // Paid exactly once, with the codes chosen before the failure
    const cards = pipeline.cardsFor(uuid);
    expect(cards).toHaveLength(2);
    expect(cards.map((card) => card.code).sort()).toEqual([failed.referrerCode, failed.redeemerCode].sort());
    expect(pipeline.customerio.events).toHaveLength(1);
    const done = await ops('status', uuid);
    expect(done.stdout).toContain('COMPLETED');
    expect(done.stdout).not.toContain(failed.redeemerCode);
    expect(await json('status', uuid)).toMatchObject({
      status: 'COMPLETED',
      steps: expect.arrayContaining([expect.objectContaining({ step: 'completed', done: true })]),
    });
    expect((await json('dlq', 'list')).messages).toEqual([]);

    // A second redrive by mistake moves nothing and pays nothing
    expect(await json('redrive')).toMatchObject({ moved: 0, status: 'COMPLETED' });
    await pipeline.drain();
    expect(pipeline.shopify.cards).toHaveLength(2);
    expect(pipeline.customerio.events).toHaveLength(1);
  });

  it('keeps the message attributes on a redrive and says "no record" for an unknown referral', async () => {
    // Prepare
    pipeline.shopify.setFaultPolicy(() => 'unauthorized');
    const { uuid, body } = referralBody();
    await pipeline.post(body);
    await pipeline.drain();

    // Act
    const unknown = await json('status', '00000000-0000-4000-8000-000000000000');
    await json('redrive', '--method', 'copy');
    const received = await pipeline.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: pipeline.resources.queueUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }),
    );
    const message = received.Messages![0]!;

    // Assess
    expect(unknown).toMatchObject({ found: false });
    expect((await ops('status', '00000000-0000-4000-8000-000000000000')).stdout).toContain('no record');
    expect(JSON.parse(message.Body!).eventId).toBe(uuid);
    expect(message.MessageAttributes?.failureReason?.StringValue).toBe('shopify_auth');
    expect(message.MessageAttributes?.eventId?.StringValue).toBe(uuid);
  });

  it('shows a referral the program rules refused as REJECTED, with nothing to redrive', async () => {
    // Prepare: a self-referral
    const { uuid, body } = referralBody({ referrer: 'same.person@example.com', redeemer: 'same.person@example.com' });
    await pipeline.post(body);
    await pipeline.drain();

    // Act
    const status = await ops('status', uuid);

    // Assess
    expect(status.stdout).toContain('REJECTED');
    expect(status.stdout).toContain('self_referral');
    expect(status.stdout).toContain('Nothing to redrive');
    expect(status.stdout).not.toContain('same.person@example.com');
    expect((await json('dlq', 'list')).messages).toEqual([]);
  });

  it('answers usage errors with exit code 2 and a missing local stack with exit code 1', async () => {
    expect(await main(['status'], { stdout: () => undefined, stderr: () => undefined })).toBe(2);
    expect(await main(['dlq', 'show', '--local'], { stdout: () => undefined, stderr: () => undefined })).toBe(2);
    expect(await main(['redrive', '--local', '--stage', 'prod'], { stdout: () => undefined, stderr: () => undefined })).toBe(2);
    rmSync(join(stateDir, 'stack.json'));
    const err: string[] = [];
    expect(await main(['dlq', 'list', '--local'], { stdout: () => undefined, stderr: (text) => err.push(text) })).toBe(1);
    expect(err.join('\n')).toContain('npm start');
  });
});
