/**
 * `npm run send-sample`: POSTs PostHog's default webhook body to the local stack (`npm start`).
 *
 *   npm run send-sample                 a NEW referral (fresh event uuid): 2 gift cards + 1 Customer.io event
 *   npm run send-sample -- --repeat     the last body sent, byte for byte: a duplicate, so nothing new happens
 *   npm run send-sample -- --no-fresh   the sample's own uuid, as written in the fixture
 *   npm run send-sample -- --unsigned   a new referral WITHOUT the app's signature (a forged event): refused
 *   npm run send-sample -- --code       asks POST /referral-codes for the sample referrer's code, then sends a
 *                                       referral that names the referrer by that code alone (as the app does)
 *   npm run send-sample -- --qualify [eventId]
 *                                       with QUALIFY_EVENT set: the redeemer's qualifying event (signed as the
 *                                       app's backend signs it) for the last sample referral, or the one given
 *   npm run send-sample -- --qualify --lost
 *                                       the same event captured into the sandbox PostHog only, never webhooked:
 *                                       the reconciler's catch-up finds it (needs RECONCILE_FROM on the stack)
 *
 * Every sample but --unsigned is signed (`referral_signature`, lib/domain/vouch.ts) as the app's
 * backend signs each referral, with the key the stack's worker checks.
 *
 * Env: PORT (default 3000), WEBHOOK_SECRET, REFERRAL_SIGNING_KEY and APP_API_KEY (default: the ones
 * `npm start` generated, read from .local/webhook-secret, .local/referral-signing-key and
 * .local/app-api-key), LOCAL_STATE_DIR (instead of .local/).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { relative as relativePath, resolve as resolvePath } from 'node:path';
import { personIdOf } from './sandbox/posthog';
import { localStateDir, stackFilePath, type LocalStackFile } from './state';
import { signPersonEventProperties, signWebhookBody } from './vouch';

const REPO = resolvePath(__dirname, '..');
/** The shared fixture when this repo sits next to it; the embedded copy otherwise. */
const FIXTURES = [
  resolvePath(REPO, '..', 'shared', 'fixtures', 'posthog-webhook-default.json'),
  resolvePath(__dirname, 'sample-event.json'),
];
const USAGE = `usage: npm run send-sample [-- --repeat | --no-fresh | --unsigned | --code | --qualify [eventId] [--lost]]
  (default)    send the sample, signed, with a new random event uuid: a new referral
  --repeat     resend exactly the last body sent: a duplicate, no new gift cards
  --no-fresh   send the sample's own event uuid unchanged
  --unsigned   leave out the app's signature (a forged event): the worker refuses it, nothing is issued
  --code       ask POST /referral-codes for the sample referrer's code, then send a referral naming that code
  --qualify    the redeemer's QUALIFY_EVENT (signed) for the last sample referral, or for [eventId]
  --lost       with --qualify: capture it into the sandbox PostHog only (no webhook): the reconciler's catch-up finds it
env: PORT (default 3000), WEBHOOK_SECRET, REFERRAL_SIGNING_KEY and APP_API_KEY (default: read from .local/),
     QUALIFY_EVENT (default: the running stack's)`;

interface Args {
  repeat: boolean;
  fresh: boolean;
  unsigned: boolean;
  code: boolean;
  qualify: boolean;
  /** --qualify's referral: its event uuid (default: the last sample referral sent). */
  qualifyFor?: string;
  lost: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseArgs(argv: string[]): Args {
  const args: Args = {
    repeat: false,
    fresh: process.env.FRESH !== '0' && process.env.FRESH !== 'false',
    unsigned: false,
    code: false,
    qualify: false,
    lost: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--repeat') args.repeat = true;
    else if (arg === '--unsigned') args.unsigned = true;
    else if (arg === '--code') args.code = true;
    else if (arg === '--fresh') args.fresh = true;
    else if (arg === '--no-fresh') args.fresh = false;
    else if (arg === '--lost') args.lost = true;
    else if (arg === '--qualify') {
      args.qualify = true;
      if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) {
        const eventId = argv[++i]!;
        if (!UUID.test(eventId)) fail(`--qualify takes a referral's event uuid, got ${eventId}\n${USAGE}`);
        args.qualifyFor = eventId.toLowerCase();
      }
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else fail(`unknown argument ${arg}\n${USAGE}`);
  }
  if (args.lost && !args.qualify) fail(`--lost goes with --qualify\n${USAGE}`);
  if (args.qualify && (args.repeat || args.code || args.unsigned))
    fail(`--qualify sends its own event: leave out the other options\n${USAGE}`);
  return args;
}

function fail(message: string): never {
  console.error(`✖ ${message}`);
  process.exit(1);
}

/** A UUIDv7, as PostHog's own event uuids are: 48 bits of unix ms, then random bits. */
function uuidv7(now: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function sampleBody(fresh: boolean): string {
  const file = FIXTURES.find((candidate) => existsSync(candidate)) ?? fail('no sample event found (local/sample-event.json is missing)');
  const text = readFileSync(file, 'utf8');
  if (!fresh) return text;
  const sample = JSON.parse(text) as {
    event: { uuid: string; timestamp?: string; url?: string; distinct_id?: string; properties: Record<string, unknown> };
    person?: { id?: string; name?: string; url?: string; properties?: Record<string, unknown> };
  };
  const old = sample.event.uuid;
  const uuid = uuidv7();
  sample.event.uuid = uuid;
  sample.event.timestamp = new Date().toISOString();
  if (sample.event.url) sample.event.url = sample.event.url.replace(old, uuid);
  // A new person redeems each fresh sample: the program pays each redeemer once, so a second
  // sample for the same one would be refused (redeemer_already_rewarded) instead of paid.
  const redeemer = `redeemer-${uuid.slice(-8)}@example.com`;
  sample.event.properties.redeemer_email = redeemer;
  sample.event.distinct_id = redeemer;
  if (sample.person) {
    // Their own PostHog person too (the id the sandbox PostHog gives this distinct id): a
    // qualifying event is matched to the referral by person first, so samples must not share one.
    sample.person.id = personIdOf(redeemer);
    sample.person.name = redeemer;
    sample.person.properties = { ...sample.person.properties, email: redeemer };
    if (sample.person.url) sample.person.url = sample.person.url.replace(/person\/[^/]*$/, `person/${encodeURIComponent(redeemer)}`);
  }
  return JSON.stringify(sample, null, 2);
}

/** A secret the stack was given (`name` in the env) or generated (`file` in the state dir). */
function readSecret(stateDir: string, name: string, file: string, what: string): string {
  const fromEnv = process.env[name]?.trim();
  if (fromEnv) return fromEnv;
  const path = resolvePath(stateDir, file);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  return fail(
    `no ${what}: start the stack first (npm start writes ${relativePath(process.cwd(), path)}),\n` +
      `  or, if you started it with ${name}=…, pass the same ${name} here.`,
  );
}

/**
 * What the app does at sign-up with a `?ref=` code: the referrer's code, asked for once from
 * POST /referral-codes (the same code on every request), named in the event instead of the
 * referrer's email. The sample's referrer is the code's owner.
 */
async function namingCode(body: string, stateDir: string, port: string): Promise<string> {
  const sample = JSON.parse(body) as { event: { properties: Record<string, unknown> } };
  const referrer = String(sample.event.properties.referrer_email ?? 'referrer@example.com');
  const key = readSecret(stateDir, 'APP_API_KEY', 'app-api-key', 'app API key');
  const url = `http://127.0.0.1:${port}/referral-codes`;
  console.log(`→ POST ${url}  for the sample referrer`);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ email: referrer, distinct_id: referrer }),
    signal: AbortSignal.timeout(10_000),
  }).catch((error: unknown) => fail(`request failed: ${(error as Error).message}: is \`npm start\` running on port ${port}?`));
  const answer = (await response.json().catch(() => ({}))) as { code?: string; link?: string; error?: { code?: string } };
  if (response.status !== 200 || !answer.code) fail(`POST /referral-codes answered ${response.status} ${answer.error?.code ?? ''}`);
  console.log(`← ${response.status} code ${answer.code}, link ${answer.link}`);
  delete sample.event.properties.referrer_email;
  sample.event.properties.referral_code = answer.code;
  return JSON.stringify(sample, null, 2);
}

/** The sample signed as the app's backend would sign it, unless `--unsigned`. */
function vouched(body: string, stateDir: string, unsigned: boolean): string {
  if (unsigned) return body;
  const key = readSecret(stateDir, 'REFERRAL_SIGNING_KEY', 'referral-signing-key', 'referral signing key');
  return JSON.stringify(signWebhookBody(JSON.parse(body) as unknown, key), null, 2);
}

/** One referral sent, remembered so `--qualify [eventId]` can send its redeemer's event. */
interface SentReferral {
  eventId: string;
  distinctId: string;
  personId?: string;
  email?: string;
}

/** The referrals sent so far (newest last; the last 200), in the state dir. */
const SAMPLES_KEPT = 200;
const samplesFile = (stateDir: string): string => resolvePath(stateDir, 'samples.json');

function readSamples(stateDir: string): SentReferral[] {
  try {
    return JSON.parse(readFileSync(samplesFile(stateDir), 'utf8')) as SentReferral[];
  } catch {
    return [];
  }
}

function rememberReferral(stateDir: string, body: string): void {
  const { event, person } = JSON.parse(body) as {
    event?: { uuid?: string; distinct_id?: string };
    person?: { id?: string; properties?: { email?: string } };
  };
  if (!event?.uuid || !event.distinct_id) return;
  const sent: SentReferral = {
    eventId: event.uuid.toLowerCase(),
    distinctId: event.distinct_id,
    personId: person?.id,
    email: person?.properties?.email,
  };
  const samples = [...readSamples(stateDir).filter((sample) => sample.eventId !== sent.eventId), sent].slice(-SAMPLES_KEPT);
  writeFileSync(samplesFile(stateDir), `${JSON.stringify(samples, null, 2)}\n`);
}

function readStack(): LocalStackFile | undefined {
  try {
    return JSON.parse(readFileSync(stackFilePath(), 'utf8')) as LocalStackFile;
  } catch {
    return undefined;
  }
}

/**
 * The redeemer's qualifying event for a sample referral, as PostHog's default webhook body: the
 * same distinct id and person, a new event uuid, an amount over the README's example QUALIFY_WHERE,
 * and `referral_signature` over (event name, distinct id, uuid) as the app's backend signs it.
 */
function qualifyingBody(referral: SentReferral, eventName: string, signingKey: string): string {
  const uuid = uuidv7();
  const properties = signPersonEventProperties(eventName, referral.distinctId, uuid, { amount: 49, currency: 'USD' }, signingKey);
  return JSON.stringify(
    {
      event: {
        uuid,
        event: eventName,
        distinct_id: referral.distinctId,
        properties,
        elements_chain: '',
        timestamp: new Date().toISOString(),
        url: `https://us.posthog.com/project/12345/events/${uuid}`,
      },
      person: {
        ...(referral.personId ? { id: referral.personId } : {}),
        name: referral.email ?? referral.distinctId,
        url: `https://us.posthog.com/project/12345/person/${encodeURIComponent(referral.distinctId)}`,
        properties: referral.email ? { email: referral.email } : {},
      },
    },
    null,
    2,
  );
}

/** `--qualify`: the referral whose redeemer qualifies, and the event name, or a message saying what is missing. */
function qualifyTarget(args: Args, stateDir: string): { referral: SentReferral; eventName: string; stack?: LocalStackFile } {
  const stack = readStack();
  const eventName = process.env.QUALIFY_EVENT?.trim() || stack?.qualify?.event;
  if (!eventName) {
    fail(
      'the stack does not wait for a qualifying event: start it with QUALIFY_EVENT set, e.g.\n' +
        '  QUALIFY_EVENT=\'subscription paid\' npm start   (README, "Try it locally")',
    );
  }
  const samples = readSamples(stateDir);
  const referral = args.qualifyFor ? samples.find((sample) => sample.eventId === args.qualifyFor) : samples[samples.length - 1];
  if (!referral) {
    fail(
      args.qualifyFor
        ? `no sample referral ${args.qualifyFor} was sent from here (${relativePath(process.cwd(), samplesFile(stateDir))})`
        : 'no sample referral sent yet: run `npm run send-sample` first',
    );
  }
  return { referral, eventName, stack };
}

/** `--qualify --lost`: the event captured into the sandbox PostHog, as the app's backend captures it; no webhook. */
async function captureLost(body: string, stack: LocalStackFile | undefined): Promise<void> {
  const capture = stack?.qualify?.capture;
  if (!capture) {
    fail(
      'no sandbox PostHog to capture into: start the stack with the reconciler on, e.g.\n' +
        "  QUALIFY_EVENT='subscription paid' RECONCILE_FROM=2020-01-01T00:00:00Z RECONCILE_INTERVAL=30s RECONCILE_MIN_AGE=0s npm start",
    );
  }
  const { event, person } = JSON.parse(body) as {
    event: { uuid: string; event: string; distinct_id: string; properties: Record<string, unknown>; timestamp: string };
    person?: { properties?: { email?: string } };
  };
  const url = `${capture.url}/i/v0/e/`;
  console.log(`→ POST ${url}  ${event.event} ${event.uuid}  (captured by the app, never sent to the webhook)`);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      api_key: capture.apiKey,
      event: event.event,
      distinct_id: event.distinct_id,
      uuid: event.uuid,
      timestamp: event.timestamp,
      properties: { ...event.properties, ...(person?.properties?.email ? { $set: { email: person.properties.email } } : {}) },
    }),
    signal: AbortSignal.timeout(10_000),
  }).catch((error: unknown) => fail(`request failed: ${(error as Error).message}: is \`npm start\` running?`));
  console.log(`← ${response.status} ${await response.text()}`);
  if (response.status !== 200) process.exit(1);
  console.log(
    "✓ in PostHog only. The reconciler's catch-up finds it on its next run (🔎 line), queues it, and the waiting\n" +
      '  referral is qualified and paid: 🎁 gift cards and ✉️  Customer.io, as if the webhook had delivered it.',
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const stateDir = localStateDir();
  const lastFile = resolvePath(stateDir, 'last-sample.json');
  const port = process.env.PORT?.trim() || '3000';
  const url = `http://127.0.0.1:${port}/webhooks/posthog`;

  let body: string;
  if (args.qualify) {
    const { referral, eventName, stack } = qualifyTarget(args, stateDir);
    const key = readSecret(stateDir, 'REFERRAL_SIGNING_KEY', 'referral-signing-key', 'referral signing key');
    body = qualifyingBody(referral, eventName, key);
    console.log(`  ${eventName} by the redeemer of referral ${referral.eventId}`);
    if (args.lost) return captureLost(body, stack);
  } else if (args.repeat) {
    if (!existsSync(lastFile)) fail('nothing to repeat yet: run `npm run send-sample` once first');
    body = readFileSync(lastFile, 'utf8');
  } else {
    const sample = sampleBody(args.fresh);
    body = vouched(args.code ? await namingCode(sample, stateDir, port) : sample, stateDir, args.unsigned);
  }
  const eventId = (JSON.parse(body) as { event?: { uuid?: string } }).event?.uuid ?? '?';
  const secret = readSecret(stateDir, 'WEBHOOK_SECRET', 'webhook-secret', 'webhook secret');

  const note = args.repeat
    ? '  (repeat of the last one: a duplicate)'
    : args.qualify
      ? '  (the qualifying event)'
      : args.unsigned
        ? "  (without the app's signature: a forged event)"
        : '';
  console.log(`→ POST ${url}  event ${eventId}${note}`);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED') {
      fail(`nothing is listening on 127.0.0.1:${port}: start the stack with \`npm start\` (and use the same PORT here)`);
    }
    fail(`request failed: ${(error as Error).message}${code ? ` (${code})` : ''}`);
  }
  const text = await response.text();
  console.log(`← ${response.status} ${text}`);

  if (response.status === 401) {
    fail(
      'the stack refused the secret. `npm start` prints the secret in its banner; either start it without\n' +
        '  WEBHOOK_SECRET (send-sample then reads .local/webhook-secret) or pass the same WEBHOOK_SECRET to both.',
    );
  }
  if (response.status === 404) fail(`something else is listening on port ${port}: is this the local stack?`);
  if (response.status !== 202 && response.status !== 200) process.exit(1);

  mkdirSync(stateDir, { recursive: true });
  writeFileSync(lastFile, body);
  if (args.qualify) {
    console.log(
      '✓ queued; the worker matches it to the waiting referral (same person) and the referral goes on as if paid on\n' +
        '  redemption: watch the `npm start` terminal for 🎁 gift cards and ✉️  Customer.io. `--repeat` sends this\n' +
        '  same event again (a duplicate: nothing more happens).',
    );
    return;
  }
  if (!args.repeat && !args.unsigned) rememberReferral(stateDir, body);
  if (args.unsigned) {
    console.log(
      '✓ queued (ingest cannot check the signature: only the worker holds the key). The worker refuses it:\n' +
        '  watch the `npm start` terminal for a 🚫 line, REJECTED unsigned_referral, and no gift card or email.\n' +
        "  A forged event claims nothing either: the same redeemer's genuine referral is still paid.",
    );
    return;
  }
  console.log(
    args.repeat
      ? '✓ accepted again (ingest always queues); the worker finds the event in the ledger and acknowledges it as a\n' +
          '  duplicate: no new gift cards, no second email. (Had the first one still been in flight, the worker would\n' +
          '  answer "busy" and SQS would redeliver the duplicate after the visibility timeout, with the same result.)'
      : '✓ queued; watch the `npm start` terminal for 🎁 gift card and ✉️  Customer.io lines.\n' +
          '  `npm run send-sample -- --repeat` sends this same event again (a duplicate).',
  );
}

if (require.main === module) void main();
