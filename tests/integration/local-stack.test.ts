import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_BODY_BYTES } from '../../lib/infra/config';
import { count, freePort, run, startLocalStack, waitFor } from '../support/local-process';

/**
 * `npm start` and `npm run send-sample` end to end, as a person runs them: the stack runs as a
 * child process (fauxqs is ESM only, which jest cannot load), on loopback, with the fake Shopify
 * and Customer.io. Only the child's console output is asserted: what the person would see.
 */

const SECRET = 'local-stack-test-secret-0123456789ab';
const SAMPLE_EMAILS = ['referrer.person@example.com', 'redeemer@example.com'];

// Line starts, so the banner's legend ("🎁 gift cards, ✉️  Customer.io events") is not counted.
const CARD_LINE = /^🎁 gift card …/gm;
const EVENT_LINE = /^✉️ +Customer\.io event "/gm;

describe('local stack (npm start + npm run send-sample)', () => {
  let stack: ChildProcess | undefined;
  let stateDir: string;
  let out = '';
  let exited: Promise<number | null>;
  let port: number;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    port = await freePort();
    stateDir = mkdtempSync(join(tmpdir(), 'local-stack-'));
    env = { ...process.env, PORT: String(port), WEBHOOK_SECRET: SECRET, LOCAL_STATE_DIR: stateDir, POWERTOOLS_LOG_LEVEL: 'INFO' };
    // The sandboxes only start when nothing points elsewhere.
    for (const name of Object.keys(env)) if (/^(SHOPIFY|CUSTOMERIO|POSTHOG)_|^RECONCILE_/.test(name)) delete env[name];
    // The reconciler on, against the sandbox PostHog, as README's "watch a lost referral" has it.
    Object.assign(env, { RECONCILE_FROM: '2020-01-01T00:00:00Z', RECONCILE_INTERVAL: '1s', RECONCILE_MIN_AGE: '0s' });

    stack = await startLocalStack(env, port, (text) => (out += text));
    exited = new Promise((resolveExit) => stack!.once('exit', (code) => resolveExit(code)));
  }, 20_000);

  afterAll(async () => {
    if (stack && stack.exitCode === null && stack.signalCode === null) stack.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('prints a banner with the URL and how to send the sample', () => {
    expect(out).toContain(`POST http://127.0.0.1:${port}/webhooks/posthog`);
    expect(out).toContain('npm run send-sample');
    expect(out).toMatch(/Shopify\s+sandbox/);
    expect(out).toMatch(/Customer\.io\s+sandbox/);
  });

  it('answers /health and refuses unknown routes with a JSON 404', async () => {
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    const missing = await fetch(`http://127.0.0.1:${port}/nope`);

    expect(await health.json()).toEqual({ status: 'ok' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('turns one sample into 2 gift cards and 1 Customer.io event, once, without printing codes or emails', async () => {
    // Act
    const sent = await run(['local/send-sample.ts'], env);
    await waitFor(() => count(out, EVENT_LINE) >= 1 && /referral fulfilled/.test(out), 'the Customer.io line', 8_000);
    const repeated = await run(['local/send-sample.ts', '--repeat'], env);
    await waitFor(() => /duplicate delivery acknowledged/.test(out), 'the duplicate to be acknowledged', 8_000);

    // Assess: what the person sees
    expect(sent.code).toBe(0);
    expect(sent.output).toContain('← 202');
    expect(repeated.code).toBe(0);
    expect(count(out, CARD_LINE)).toBe(2);
    expect(count(out, EVENT_LINE)).toBe(1);

    // Assess: only the last four characters of each code, and masked emails, ever reach the console
    const lastFours = [...out.matchAll(/^🎁 gift card …([A-Z0-9]{4})\b/gm)].map((m) => m[1]);
    expect(lastFours).toHaveLength(2);
    for (const last4 of lastFours) expect(out).not.toMatch(new RegExp(`[A-Z0-9]{4,}${last4}`, 'i'));
    for (const email of SAMPLE_EMAILS) expect(out.toLowerCase()).not.toContain(email);
    expect(out).toContain('r***@example.com');
  }, 15_000);

  it('pays a second fresh sample too: each one has a redeemer of its own, never its email in the console', async () => {
    // Prepare
    const cardsBefore = count(out, CARD_LINE);

    // Act: two fresh samples in a row
    await run(['local/send-sample.ts'], env);
    const sent = await run(['local/send-sample.ts'], env);
    await waitFor(
      () => count(out, CARD_LINE) >= cardsBefore + 4 || /REJECTED redeemer_already_rewarded/.test(out),
      'four more gift cards',
      8_000,
    );

    // Assess
    const eventId = /event ([0-9a-f-]{36})/.exec(sent.output)?.[1] ?? '';
    expect(count(out, CARD_LINE)).toBe(cardsBefore + 4);
    expect(out).not.toMatch(/REJECTED redeemer_already_rewarded/);
    expect(out).not.toContain(`redeemer-${eventId.slice(-8)}@example.com`);
  }, 15_000);

  it("refuses a sample sent without the app's signature, and says so", async () => {
    // Prepare
    const cardsBefore = count(out, CARD_LINE);

    // Act
    const sent = await run(['local/send-sample.ts', '--unsigned'], env);
    await waitFor(() => /^🚫 referral \S+ refused: REJECTED unsigned_referral/m.test(out), 'the refusal line', 8_000);

    // Assess
    expect(sent.code).toBe(0);
    expect(sent.output).toContain('← 202');
    expect(sent.output).toContain('unsigned_referral');
    expect(count(out, CARD_LINE)).toBe(cardsBefore);
  }, 15_000);

  it('passes ingest a body as large as API Gateway and Lambda deliver, and answers 413 only past 6 MB, as deployed', async () => {
    // Prepare: a PostHog person with 2 MB of properties (another event, so nothing is paid)
    const post = (body: string) =>
      fetch(`http://127.0.0.1:${port}/webhooks/posthog`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
        body,
      });
    const event = { uuid: '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61', event: '$pageview', properties: {} };
    const big = JSON.stringify({ event, person: { properties: { blob: 'x'.repeat(2 * 1024 * 1024) } } });
    const tooBig = JSON.stringify({ event, person: { properties: { blob: 'x'.repeat(MAX_BODY_BYTES) } } });

    // Act
    const accepted = await post(big);
    const refused = await post(tooBig);

    // Assess
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({ status: 'ignored' });
    expect(refused.status).toBe(413);
    expect(await refused.json()).toMatchObject({ error: { code: 'body_too_large' } });
  });

  it("pays a referral the webhook never delivered, once, through the reconciler (the banner's curl)", async () => {
    // Prepare: the banner's command, as a newcomer would paste it.
    const curl = /curl -s -X POST (\S+\/i\/v0\/e\/) .* -d '(.+)'$/m.exec(out);
    expect(curl).not.toBeNull();
    const cardsBefore = count(out, CARD_LINE);

    // Act
    const captured = await fetch(curl![1]!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: curl![2] });
    await waitFor(() => count(out, CARD_LINE) >= cardsBefore + 2, "the recovered referral's gift cards", 10_000);
    const check = await run(['ops/cli.ts', 'reconcile', '--local', '--dry-run', '--json'], env);

    // Assess
    expect(captured.status).toBe(200);
    expect(out).toMatch(/^🔎 reconcile: PostHog has 1 referral\(s\); 1 missing from the ledger, 1 queued/m);
    expect(check.code).toBe(0);
    expect(JSON.parse(check.output)).toMatchObject({ seen: 1, known: 1, missing: [] });
    expect(count(out, CARD_LINE)).toBe(cardsBefore + 2);
  }, 20_000);

  it('stops on SIGTERM and exits 0', async () => {
    stack!.kill('SIGTERM');

    expect(await exited).toBe(0);
    expect(out).toContain('stopped.');
  }, 10_000);
});
