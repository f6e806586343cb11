// Logs must actually be written for this test to mean anything: tests/support/env.ts silences
// them, and lib/infra/observability.ts reads the level once, when the logger is created. So the level is
// set here, first, and every module that (transitively) creates the logger is require()d below it.
process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type * as PipelineModule from '../support/pipeline';
import type * as SignatureModule from '../../lib/inbound/signature';
import type * as VouchModule from '../../local/vouch';
import type * as ReferralSigningModule from '../support/referral-signing';

/* eslint-disable @typescript-eslint/no-require-imports */
const { Pipeline, WEBHOOK_SECRET } = require('../support/pipeline') as typeof PipelineModule;
const { signWebhook } = require('../../lib/inbound/signature') as typeof SignatureModule;
const { signWebhookBody } = require('../../local/vouch') as typeof VouchModule;
const { TEST_REFERRAL_SIGNING_KEY } = require('../support/referral-signing') as typeof ReferralSigningModule;
/* eslint-enable @typescript-eslint/no-require-imports */

type Pipeline = PipelineModule.Pipeline;

/**
 * Everything the pipeline writes while it works (stdout, stderr, console.*) must be free of what
 * would let a reader of the logs spend a reward or mail a person: gift-card codes, full email
 * addresses, and the credentials. And every line about a referral must say which one.
 */

const SIGNING_KEY_B64 = Buffer.from('log-hygiene-signing-key-32-bytes').toString('base64');
const SIGNING_SECRET = `whsec_${SIGNING_KEY_B64}`;
const SHOPIFY_TOKEN = 'shpat_sandbox';
const CUSTOMERIO_SITE_ID = 'sandbox-site';
const CUSTOMERIO_KEY = 'sandbox-key';

// ---------------------------------------------------------------------------------------------
// Capture
// ---------------------------------------------------------------------------------------------

const chunks: string[] = [];
const restorers: (() => void)[] = [];

function capture(): void {
  const record = (args: unknown[]) => {
    chunks.push(
      args.map((arg) => (typeof arg === 'string' ? arg : Buffer.isBuffer(arg) ? arg.toString('utf8') : safeInspect(arg))).join(' '),
    );
  };
  for (const stream of [process.stdout, process.stderr]) {
    const spy = jest.spyOn(stream, 'write').mockImplementation(((chunk: unknown) => {
      record([chunk]);
      return true;
    }) as typeof stream.write);
    restorers.push(() => spy.mockRestore());
  }
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const spy = jest.spyOn(console, method).mockImplementation((...args: unknown[]) => record(args));
    restorers.push(() => spy.mockRestore());
  }
}

function release(): void {
  while (restorers.length > 0) restorers.pop()!();
}

function safeInspect(value: unknown): string {
  try {
    return value instanceof Error ? `${value.name}: ${value.message}\n${value.stack ?? ''}` : JSON.stringify(value);
  } catch {
    return String(value);
  }
}

interface LogLine {
  raw: string;
  json?: Record<string, unknown>;
}

function lines(from = 0, to = chunks.length): LogLine[] {
  return chunks
    .slice(from, to)
    .flatMap((chunk) => chunk.split('\n'))
    .filter((raw) => raw.trim() !== '')
    .map((raw) => {
      try {
        const json: unknown = JSON.parse(raw);
        return json !== null && typeof json === 'object' ? { raw, json: json as Record<string, unknown> } : { raw };
      } catch {
        return { raw };
      }
    });
}

/** A line written by our JSON logger (ingest or worker). */
const isOurs = (line: LogLine): boolean => line.json !== undefined && 'level' in line.json && 'service' in line.json;

// ---------------------------------------------------------------------------------------------
// A Customer.io that answers 400 and echoes what it was sent, as APIs that quote bad input do
// ---------------------------------------------------------------------------------------------

interface EchoingCustomerIo {
  url: string;
  /** Every gift-card code and email it was sent. */
  seen: string[];
  close(): Promise<void>;
}

async function startEchoing400CustomerIo(): Promise<EchoingCustomerIo> {
  const seen: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    req.on('end', () => {
      const identifier = decodeURIComponent(/\/customers\/([^/]+)\/events/.exec(req.url ?? '')?.[1] ?? '');
      const data = (JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as { data?: Record<string, string> }).data ?? {};
      seen.push(identifier, ...Object.values(data));
      const errors = [
        `identifier ${identifier} is not allowed in this workspace`,
        `data.discountreferrer "${data.discountreferrer}" looks like a duplicate of ${String(data.discountreferrer).toLowerCase()}`,
        `data.refereeemail <${data.refereeemail}> bounced; referrer ${data.referreremail}`,
      ];
      const text = JSON.stringify({ meta: { errors } });
      res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/** A referral with distinctive, mixed-case emails, so any spelling of them in a log is found. */
function referral(tag: string) {
  const uuid = randomUUID();
  const short = uuid.slice(0, 8);
  const referrer = `Referrer.${tag}.${short}@Example.COM`;
  const redeemer = `Redeemer.${tag}.${short}@Example.org`;
  // Signed by the app's backend, as every genuine referral is: the worker refuses one that is not.
  const body = JSON.stringify(
    signWebhookBody(
      {
        event: {
          uuid,
          event: 'referral redeemed',
          distinct_id: redeemer,
          properties: { referrer_email: referrer, redeemer_email: redeemer },
          timestamp: new Date().toISOString(),
        },
        person: { id: randomUUID(), name: redeemer, properties: { email: redeemer } },
      },
      TEST_REFERRAL_SIGNING_KEY,
    ),
  );
  return { uuid, referrer, redeemer, body };
}

function signed(body: string, id = `msg_${randomUUID()}`): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': signWebhook({ secret: SIGNING_SECRET, id, timestamp, body }),
  };
}

interface Phase {
  name: string;
  /** The event this phase is about; every one of our lines in it must carry it. */
  eventId?: string;
  from: number;
  to: number;
}

const phases: Phase[] = [];
const emails: string[] = [];
const codes: string[] = [];
const pipelines: Pipeline[] = [];
let echoing: EchoingCustomerIo | undefined;

async function phase(name: string, eventId: string | undefined, work: () => Promise<void>): Promise<void> {
  const from = chunks.length;
  await work();
  phases.push({ name, eventId, from, to: chunks.length });
}

beforeAll(async () => {
  const env = { WEBHOOK_SIGNING_SECRET: SIGNING_SECRET };
  const main = await Pipeline.start({ env, workerTimeoutMs: 6_000 });
  pipelines.push(main);
  echoing = await startEchoing400CustomerIo();
  const rejecting = await Pipeline.start({ env: { ...env, CUSTOMERIO_TRACK_URL: echoing.url } });
  pipelines.push(rejecting);

  capture();
  try {
    // 1. Success.
    const ok = referral('ok');
    emails.push(ok.referrer, ok.redeemer);
    await phase('success', ok.uuid, async () => {
      expect((await main.post(ok.body, signed(ok.body))).statusCode).toBe(202);
      await main.drain();
      expect((await main.record(ok.uuid))?.status).toBe('COMPLETED');
      expect(main.cardsFor(ok.uuid)).toHaveLength(2);
    });

    // 2. The same event again (a PostHog retry): acknowledged, nothing new issued.
    await phase('duplicate', ok.uuid, async () => {
      expect((await main.post(ok.body, signed(ok.body))).statusCode).toBe(202);
      await main.drain();
    });

    // 3. Shopify fails transiently (503, throttled, a lost answer), the worker retries and succeeds.
    const retried = referral('retry');
    emails.push(retried.referrer, retried.redeemer);
    await phase('shopify retryable failures', retried.uuid, async () => {
      main.shopify.injectFaults('http503', 'throttled', 'lost-response', 'internal-error');
      expect((await main.post(retried.body, signed(retried.body))).statusCode).toBe(202);
      await main.drain();
      expect((await main.record(retried.uuid))?.status).toBe('COMPLETED');
    });

    // 4. Customer.io answers 400 and quotes the codes and emails back: permanent, dead-lettered.
    const rejected = referral('cio400');
    emails.push(rejected.referrer, rejected.redeemer);
    await phase('customer.io 400', rejected.uuid, async () => {
      expect((await rejecting.post(rejected.body, signed(rejected.body))).statusCode).toBe(202);
      await rejecting.drain();
      expect(await rejecting.deadLetters()).toHaveLength(1);
    });

    // 5. Customer.io refuses our credentials: permanent, dead-lettered.
    const unauthorised = referral('cio401');
    emails.push(unauthorised.referrer, unauthorised.redeemer);
    await phase('customer.io 401', unauthorised.uuid, async () => {
      main.customerio.setFaultPolicy(() => 'unauthorized');
      expect((await main.post(unauthorised.body, signed(unauthorised.body))).statusCode).toBe(202);
      await main.drain();
      main.customerio.setFaultPolicy(undefined);
    });

    // 6. Webhooks refused at the door, before the body is read.
    const refused = referral('refused');
    emails.push(refused.referrer, refused.redeemer);
    await phase('refused before parsing', undefined, async () => {
      expect((await main.post(refused.body, { ...signed(refused.body), authorization: 'Bearer not-the-secret' })).statusCode).toBe(401);
      expect((await main.post(refused.body, { authorization: `Bearer ${SIGNING_SECRET}` })).statusCode).toBe(401);
      expect((await main.post(refused.body, {})).statusCode).toBe(401);
      expect((await main.post(refused.body, { ...signed(refused.body), 'webhook-signature': `v1,${SIGNING_KEY_B64}` })).statusCode).toBe(
        401,
      );
      expect((await main.post(refused.body, { ...signed(refused.body), 'webhook-timestamp': '1' })).statusCode).toBe(401);
      const notJson = `referral for ${refused.redeemer}`;
      expect((await main.post(notJson, signed(notJson))).statusCode).toBe(400);
    });

    // 7. Refused after parsing: a readable uuid, unusable emails.
    const invalid = referral('invalid');
    const badBody = invalid.body.replace(
      `"referrer_email":"${invalid.referrer}"`,
      `"referrer_email":"${invalid.referrer} (${invalid.redeemer})"`,
    );
    emails.push(invalid.referrer, invalid.redeemer);
    await phase('unprocessable', invalid.uuid, async () => {
      expect((await main.post(badBody, signed(badBody))).statusCode).toBe(422);
    });

    // 8. Another event: acknowledged and ignored.
    const other = referral('ignored');
    const otherBody = other.body.replace('"referral redeemed"', '"$pageview"');
    emails.push(other.referrer, other.redeemer);
    await phase('ignored', other.uuid, async () => {
      expect((await main.post(otherBody, signed(otherBody))).statusCode).toBe(200);
    });
  } finally {
    release();
  }
  for (const pipeline of pipelines) codes.push(...pipeline.shopify.cards.map((card) => card.code));
}, 90_000);

afterAll(async () => {
  release();
  for (const pipeline of pipelines) await pipeline.stop();
  await echoing?.close();
});

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/** The first captured line containing `secret` (case-insensitively), to show in a failure. */
function leak(secret: string): string | undefined {
  const needle = secret.toLowerCase();
  return lines().find((line) => line.raw.toLowerCase().includes(needle))?.raw;
}

describe('log hygiene across a pipeline run', () => {
  it('captured the logs of every step (so the checks below are not vacuous)', () => {
    const ours = lines().filter(isOurs);
    expect(ours.length).toBeGreaterThan(10);
    // Worker wording is the worker's to change: what is checked is that each step logged at the level it should.
    const levelsIn = (name: string) => {
      const { from, to } = phases.find((p) => p.name === name)!;
      return lines(from, to)
        .filter(isOurs)
        .map((line) => String(line.json!.level));
    };
    expect(levelsIn('success')).toContain('INFO');
    expect(levelsIn('duplicate')).toContain('INFO');
    expect(levelsIn('shopify retryable failures')).toContain('WARN');
    expect(levelsIn('customer.io 400')).toContain('ERROR');
    expect(levelsIn('customer.io 401')).toContain('ERROR');
    expect(levelsIn('unprocessable')).toContain('WARN');
    expect(levelsIn('ignored')).toContain('DEBUG');
    expect(ours.map((line) => line.json!.message)).toEqual(expect.arrayContaining(['referral queued', 'webhook rejected']));
    // Codes were issued (2 per referral that reached Customer.io) and emails were used.
    expect(codes.length).toBeGreaterThanOrEqual(8);
    expect(emails.length).toBe(14);
    // The 400-answering Customer.io did receive the codes and emails it then quoted back.
    expect(echoing!.seen.length).toBeGreaterThan(0);
  });

  it('never logs a gift-card code, in any case', () => {
    for (const code of codes) {
      expect({ code, line: leak(code) }).toEqual({ code, line: undefined });
      expect({ code: code.toLowerCase(), line: leak(code.toLowerCase()) }).toEqual({ code: code.toLowerCase(), line: undefined });
    }
  });

  it('never logs a full email address, however spelled', () => {
    for (const email of [...emails, ...echoing!.seen.filter((value) => value.includes('@'))]) {
      expect({ email, line: leak(email) }).toEqual({ email, line: undefined });
      expect({ email, line: leak(email.trim().toLowerCase()) }).toEqual({ email, line: undefined });
    }
  });

  it('never logs a credential', () => {
    const credentials = [
      WEBHOOK_SECRET,
      SIGNING_SECRET,
      SIGNING_KEY_B64,
      TEST_REFERRAL_SIGNING_KEY,
      SHOPIFY_TOKEN,
      CUSTOMERIO_KEY,
      Buffer.from(`${CUSTOMERIO_SITE_ID}:${CUSTOMERIO_KEY}`).toString('base64'),
    ];
    for (const credential of credentials) {
      expect({ credential, line: leak(credential) }).toEqual({ credential, line: undefined });
    }
  });

  it('puts the eventId on every ingest and worker line about a referral', () => {
    for (const { name, eventId, from, to } of phases.filter((p) => p.eventId !== undefined)) {
      const ours = lines(from, to).filter(isOurs);
      expect({ phase: name, lines: ours.length > 0 }).toEqual({ phase: name, lines: true });
      for (const line of ours) {
        expect({ phase: name, eventId: line.json!.eventId, line: line.raw }).toEqual({ phase: name, eventId, line: line.raw });
      }
    }
  });

  it('logs refusals before parsing with the request id and the reason, without an eventId to give', () => {
    const refused = phases.find((p) => p.name === 'refused before parsing')!;
    const ours = lines(refused.from, refused.to).filter(isOurs);
    expect(ours.map((line) => line.json!.code)).toEqual([
      'unauthorized',
      'unauthorized',
      'missing_signature',
      'bad_signature',
      'stale_timestamp',
      'invalid_json',
    ]);
    for (const line of ours) {
      expect(typeof line.json!.requestId).toBe('string');
      expect(line.json!.eventId).toBeUndefined();
    }
  });
});
