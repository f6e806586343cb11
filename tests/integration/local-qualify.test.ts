import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, freePort, REPO, run, TSX, waitFor } from '../support/local-process';

/**
 * Pay on value in the local stack, as README's "Try it locally" has it: `npm start` with
 * QUALIFY_EVENT (and the reconciler on the sandbox PostHog), then `npm run send-sample` and
 * `npm run send-sample -- --qualify [--lost]`. Only the console output is asserted.
 */

const SECRET = 'local-qualify-test-secret-0123456789ab';
const CARD_LINE = /^🎁 gift card …/gm;
const WAITING_LINE = /^⏳ event ([0-9a-f-]{36}) waits for its redeemer's qualifying event \(QUALIFY_EVENT\) until (\S+):/m;

describe('local stack with QUALIFY_EVENT (npm start + send-sample -- --qualify)', () => {
  let stack: ChildProcess | undefined;
  let stateDir: string;
  let out = '';
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const port = await freePort();
    stateDir = mkdtempSync(join(tmpdir(), 'local-qualify-'));
    env = { ...process.env, PORT: String(port), WEBHOOK_SECRET: SECRET, LOCAL_STATE_DIR: stateDir, POWERTOOLS_LOG_LEVEL: 'INFO' };
    for (const name of Object.keys(env)) if (/^(SHOPIFY|CUSTOMERIO|POSTHOG|QUALIFY|REVOKE)_|^RECONCILE_/.test(name)) delete env[name];
    Object.assign(env, {
      QUALIFY_EVENT: 'subscription paid',
      QUALIFY_WITHIN: '7d',
      QUALIFY_WHERE: 'toFloat(properties.amount) >= 20',
      RECONCILE_FROM: '2020-01-01T00:00:00Z',
      RECONCILE_INTERVAL: '1s',
      RECONCILE_MIN_AGE: '0s',
    });
    stack = spawn(TSX, ['local/start.ts'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    stack.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    stack.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await waitFor(
      async () => {
        try {
          return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
        } catch {
          return false;
        }
      },
      `/health on port ${port}; output so far:\n${out}`,
      12_000,
    );
  }, 20_000);

  afterAll(async () => {
    // SIGTERM, which tsx relays to the stack: a SIGKILL would leave the stack's own node process running.
    if (stack && stack.exitCode === null && stack.signalCode === null) {
      const exited = new Promise((resolveExit) => stack!.once('exit', resolveExit));
      stack.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolveWait) => setTimeout(resolveWait, 8_000))]);
      if (stack.exitCode === null && stack.signalCode === null) stack.kill('SIGKILL');
    }
    rmSync(stateDir, { recursive: true, force: true });
  }, 10_000);

  it('names the qualifying event and the --qualify commands in the banner', () => {
    expect(out).toContain('a referral waits (⏳) for its redeemer\'s "subscription paid" within 7d where toFloat(properties.amount) >= 20');
    expect(out).toContain('npm run send-sample -- --qualify ');
    expect(out).toContain('npm run send-sample -- --qualify --lost');
  });

  it('prints a sample referral as waiting with its deadline, then pays it once its redeemer qualifies, and a repeat pays nothing more', async () => {
    // Act
    const sent = await run(['local/send-sample.ts'], env);
    await waitFor(() => WAITING_LINE.test(out), 'the waiting line', 10_000);
    const cardsWhileWaiting = count(out, CARD_LINE);
    const qualified = await run(['local/send-sample.ts', '--qualify'], env);
    await waitFor(() => count(out, CARD_LINE) >= cardsWhileWaiting + 2, 'the gift cards', 10_000);
    const repeated = await run(['local/send-sample.ts', '--repeat'], env);
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    // Assess
    const [, waitingId, deadline] = WAITING_LINE.exec(out)!;
    expect(sent.output).toContain(`event ${waitingId}`);
    expect(Date.parse(deadline!) - Date.now()).toBeGreaterThan(6 * 86_400_000);
    expect(cardsWhileWaiting).toBe(0);
    expect(qualified.code).toBe(0);
    expect(qualified.output).toContain(`subscription paid by the redeemer of referral ${waitingId}`);
    expect(qualified.output).toContain('← 202');
    expect(repeated.output).toContain('← 202');
    expect(count(out, CARD_LINE)).toBe(2);
  }, 30_000);

  it("pays a given waiting referral whose redeemer's event reached PostHog only, through the reconciler's catch-up", async () => {
    // Prepare: two waiting referrals; the first is the one that qualifies
    const first = await run(['local/send-sample.ts'], env);
    await run(['local/send-sample.ts'], env);
    const firstId = /event ([0-9a-f-]{36})/.exec(first.output)![1]!;
    await waitFor(() => count(out, /^⏳ event/gm) >= 3, 'two more waiting lines', 10_000);
    const cardsBefore = count(out, CARD_LINE);

    // Act
    const lost = await run(['local/send-sample.ts', '--qualify', firstId, '--lost'], env);
    await waitFor(() => count(out, CARD_LINE) >= cardsBefore + 2, "the caught-up referral's gift cards", 15_000);

    // Assess
    expect(lost.code).toBe(0);
    expect(lost.output).toContain('never sent to the webhook');
    expect(out).toMatch(
      /^🔎 reconcile catch-up: PostHog has \d+ qualifying\/refund event\(s\) of referrals' redeemers; 1 not handled yet, 1 queued/m,
    );
    expect(out).toMatch(new RegExp(`^🎁 gift card …\\w{4} created in the Shopify sandbox: .* event ${firstId}`, 'm'));
    expect(count(out, CARD_LINE)).toBe(cardsBefore + 2);
  }, 30_000);
});
