import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { MAX_BODY_BYTES, type IngestConfig } from '../../lib/infra/config';
import { referralLimitProblem } from '../../lib/domain/limits';
import { parseReferral } from '../../lib/domain/referral';
import { signWebhook } from '../../lib/inbound/signature';
import { JSON_BOUNDS } from '../../lib/inbound/json-bounds';
import { makeIngestHandler } from '../../functions/ingest';
import { httpApiEvent } from '../../local/apigw';

/**
 * Property tests of ingest against whatever a network can deliver. Per property:
 * FUZZ_RUNS runs (default 300); `FUZZ_RUNS=10000 npx jest tests/unit/ingest-fuzz.test.ts` is the full run.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const TIMEOUT_MS = Math.max(30_000, RUNS * 40);

const BEARER = 'fuzz-bearer-secret-0123456789abcdef';
const SIGNING_SECRET = `whsec_${Buffer.from('fuzz-signing-key-0123456789abcde').toString('base64')}`;
const NOW_MS = 1_763_633_730_000;
const REFERRAL_EVENT = 'referral redeemed';
const ALLOWED_STATUSES = [200, 202, 400, 401, 413, 422];
const SIGNATURE_CODES = ['missing_signature', 'invalid_timestamp', 'stale_timestamp', 'bad_signature'];

const CONFIG: IngestConfig = {
  webhookSecret: BEARER,
  referralEvent: REFERRAL_EVENT,
  referrerEmailProperty: 'referrer_email',
  redeemerEmailProperty: 'redeemer_email',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
};
const SIGNED_CONFIG: IngestConfig = { ...CONFIG, webhookSigningSecret: SIGNING_SECRET };

const sqsMock = mockClient(SQSClient);
const sqs = new SQSClient({});
const plainHandler = makeIngestHandler({ sqs, config: async () => CONFIG, now: () => NOW_MS });
const signedHandler = makeIngestHandler({ sqs, config: async () => SIGNED_CONFIG, now: () => NOW_MS });

beforeAll(() => {
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'fuzz-message' });
});

afterAll(() => {
  sqsMock.restore();
});

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const json = fc.jsonValue({ maxDepth: 3 });

/** Emails every validator on the way accepts, in any case, sometimes padded. */
const safeEmail = fc
  .tuple(
    fc.stringMatching(/^[a-z0-9]{1,10}([._+-][a-z0-9]{1,5})?$/),
    fc.stringMatching(/^[a-z0-9]{1,12}(-[a-z0-9]{1,6})?$/),
    fc.constantFrom('com', 'org', 'io', 'example', 'co.uk'),
  )
  .map(([local, domain, tld]) => `${local}@${domain}.${tld}`);
const validEmail = fc.tuple(fc.mixedCase(safeEmail), fc.constantFrom('', ' ', '\t', '\n ')).map(([email, pad]) => `${pad}${email}${pad}`);

/** Anything in an email slot: valid, RFC-valid but odd, near misses, wrong types. */
const anyEmail = fc.oneof(
  { weight: 4, arbitrary: validEmail },
  fc.emailAddress(),
  fc.constantFrom('', '@', 'a@', '@b.com', 'a@b', 'a@@b.com', 'a b@c.com', 'no-at-sign', `${'x'.repeat(250)}@example.com`),
  // Either side of Customer.io's 150-byte identifier limit (lib/domain/limits.ts).
  fc.constantFrom(`${'x'.repeat(138)}@example.com`, `${'x'.repeat(139)}@example.com`, `${'x'.repeat(242)}@example.com`),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  json,
);

const uuidLike = fc.oneof(
  { weight: 4, arbitrary: fc.uuid() },
  fc.uuid().map((u) => u.toUpperCase()),
  fc.uuid().map((u) => u.replace(/-/g, '')),
  fc.uuid().map((u) => `{${u}}`),
  fc.constantFrom('', 'not-a-uuid', '00000000-0000-0000-0000-000000000000', 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'),
  json,
);

const eventName = fc.oneof(
  { weight: 5, arbitrary: fc.constant(REFERRAL_EVENT) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('$pageview', '', 'Referral Redeemed', `${REFERRAL_EVENT} `, 'referral_redeemed', '$identify'),
  },
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  json,
);

/** The shape of a referral, with every field optionally missing or of the wrong type. */
const nearReferral = fc
  .record(
    {
      uuid: uuidLike,
      event: eventName,
      distinct_id: fc.oneof(fc.string(), json),
      properties: fc.oneof(
        { weight: 4, arbitrary: fc.record({ referrer_email: anyEmail, redeemer_email: anyEmail }, { requiredKeys: [] }) },
        json,
      ),
      timestamp: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        json,
      ),
      elements_chain: fc.string(),
    },
    { requiredKeys: [] },
  )
  .chain((event) =>
    fc.oneof(
      fc.constant<unknown>(event),
      fc
        .record(
          { person: fc.oneof(fc.record({ properties: fc.record({ email: anyEmail }, { requiredKeys: [] }) }), json) },
          { requiredKeys: [] },
        )
        .map((rest) => ({ event, ...rest })),
    ),
  );

interface ValidReferral {
  body: Record<string, unknown>;
  expected: { eventId: string; referrerEmail: string; redeemerEmail: string; customerEmail: string; personEmail?: string };
}

/** A referral ingest must accept: PostHog's default body or a bare event, person optional. */
const validReferral: fc.Arbitrary<ValidReferral> = fc
  .record({
    uuid: fc.uuid().chain((u) => fc.constantFrom(u, u.toUpperCase())),
    referrer: validEmail,
    redeemer: validEmail,
    wrapped: fc.boolean(),
    person: fc.option(validEmail, { nil: undefined }),
    redeemerInProperties: fc.boolean(),
    extraProperties: fc.dictionary(fc.string({ maxLength: 12 }), json, { maxKeys: 3 }),
    extraTop: fc.dictionary(fc.constantFrom('url', 'elements_chain', 'groups', '$set'), json, { maxKeys: 2 }),
  })
  .map((r) => {
    const personEmail = r.wrapped ? r.person : undefined;
    // Without a redeemer_email property the person's email stands in, so keep one or the other.
    const withRedeemer = r.redeemerInProperties || personEmail === undefined;
    const properties: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(r.extraProperties)) {
      if (key !== 'referrer_email' && key !== 'redeemer_email') properties[key] = value;
    }
    properties.referrer_email = r.referrer;
    if (withRedeemer) properties.redeemer_email = r.redeemer;
    const event = { ...r.extraTop, uuid: r.uuid, event: REFERRAL_EVENT, distinct_id: 'someone', properties };
    const body = r.wrapped ? { event, ...(r.person !== undefined ? { person: { properties: { email: r.person } } } : {}) } : event;
    const norm = (email: string) => email.trim().toLowerCase();
    const redeemerEmail = norm(withRedeemer ? r.redeemer : personEmail!);
    return {
      body,
      expected: {
        eventId: r.uuid.toLowerCase(),
        referrerEmail: norm(r.referrer),
        redeemerEmail,
        // The codes always go to the redeemer; the person is carried for the self-referral rule.
        customerEmail: redeemerEmail,
        ...(personEmail !== undefined ? { personEmail: norm(personEmail) } : {}),
      },
    };
  });

const serialise = (value: unknown) =>
  fc.constantFrom(0, 2, '\t').map((indent) => {
    const text = JSON.stringify(value, null, indent);
    return text === undefined ? 'undefined' : text;
  });

/** Deep nesting, at the top or inside the fields ingest reads. */
const deeplyNested = fc
  .tuple(fc.integer({ min: 50, max: 20_000 }), fc.constantFrom('array', 'object', 'in-properties', 'in-event', 'in-person'))
  .map(([depth, where]) => {
    const arrays = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const uuid = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61';
    switch (where) {
      case 'array':
        return arrays;
      case 'object':
        return objects;
      case 'in-properties':
        return `{"event":{"uuid":"${uuid}","event":"${REFERRAL_EVENT}","properties":{"referrer_email":${objects},"redeemer_email":"a@example.com"}}}`;
      case 'in-event':
        return `{"event":{"uuid":"${uuid}","event":${arrays},"properties":${objects}}}`;
      default:
        return `{"event":{"uuid":"${uuid}","event":"${REFERRAL_EVENT}","properties":{"referrer_email":"a@example.com"}},"person":${objects}}`;
    }
  });

/** Bodies at and around the body limit, in bytes, with one- and multi-byte padding. */
const nearLimit = fc
  .tuple(validReferral, fc.integer({ min: -64, max: 64 }), fc.constantFrom(' ', 'é', '🎁', 'x'), fc.constantFrom('pad', 'value'))
  .map(([{ body }, delta, unit, how]) => {
    const base = JSON.stringify(body);
    const target = MAX_BODY_BYTES + delta;
    const unitBytes = Buffer.byteLength(unit);
    if (how === 'pad' && unit === ' ') return base + ' '.repeat(Math.max(0, target - Buffer.byteLength(base)));
    // A long string value inside the body: still valid JSON.
    const filler = unit.repeat(Math.max(0, Math.floor((target - Buffer.byteLength(base) - 12) / unitBytes)));
    return JSON.stringify({ ...body, filler });
  });

// Just past the limit: the limit is megabytes, so far past it would only make the run slow.
const huge = fc.integer({ min: MAX_BODY_BYTES + 1, max: MAX_BODY_BYTES + 64 * 1024 }).map((size) => `{"x":"${'a'.repeat(size)}"}`);

const fixedOddities = fc.constantFrom(
  '',
  ' ',
  'null',
  'true',
  '0',
  '-1e999',
  '"referral redeemed"',
  '[]',
  '[{}]',
  '{}',
  '{"event":null}',
  '{"event":"referral redeemed"}',
  '{"event":"referral redeemed","uuid":"0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61"}',
  '{"event":[],"person":null}',
  '{"event":{"event":"referral redeemed","uuid":null}}',
  '{"__proto__":{"event":"referral redeemed"}}',
  '{"event":{"event":"referral redeemed","uuid":"0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61","properties":{"__proto__":{"referrer_email":"a@example.com","redeemer_email":"b@example.com"}}}}',
  '{"event":{"event":"referral redeemed","uuid":"0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61","properties":{"constructor":1,"toString":2}}}',
  '\uFEFF{}',
  '{"a":1,}',
  '{"a":"\\ud800"}',
  'Referral redeemed by a@example.com',
);

/** The body as a string. */
const anyBodyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: nearReferral.chain(serialise) },
  { weight: 2, arbitrary: validReferral.chain(({ body }) => serialise(body)) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 2, arbitrary: fixedOddities },
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  deeplyNested,
  nearLimit,
  huge,
);

/** The request body as API Gateway hands it over: text, base64 of some bytes, garbage claimed to be base64, or none. */
type BodyDelivery = { body: string | undefined; isBase64Encoded: boolean };
const anyDelivery: fc.Arbitrary<BodyDelivery> = fc.oneof(
  { weight: 6, arbitrary: anyBodyText.map((body) => ({ body, isBase64Encoded: false })) },
  { weight: 3, arbitrary: anyBodyText.map((body) => ({ body: Buffer.from(body).toString('base64'), isBase64Encoded: true })) },
  fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ body: Buffer.from(bytes).toString('base64'), isBase64Encoded: true })),
  fc.string({ maxLength: 100 }).map((body) => ({ body, isBase64Encoded: true })),
  fc.boolean().map((isBase64Encoded) => ({ body: undefined, isBase64Encoded })),
);

const contentType = fc.option(
  fc.oneof(
    fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'text/plain',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      '',
    ),
    fc.string({ maxLength: 40 }),
  ),
  { nil: undefined },
);

type Auth = { value: string | undefined; valid: boolean };
const authorization: fc.Arbitrary<Auth> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Auth>({ value: `Bearer ${BEARER}`, valid: true }) },
  fc.constantFrom<Auth>(
    { value: `bearer ${BEARER}`, valid: true },
    { value: `BEARER   ${BEARER}  `, valid: true },
    { value: undefined, valid: false },
    { value: '', valid: false },
    { value: BEARER, valid: false },
    { value: `Bearer ${BEARER}x`, valid: false },
    { value: `Bearer ${BEARER.slice(0, -1)}`, valid: false },
    { value: `Basic ${Buffer.from(`user:${BEARER}`).toString('base64')}`, valid: false },
    { value: 'Bearer ', valid: false },
  ),
  fc.string({ maxLength: 60 }).map((value) => ({ value, valid: false })),
);

const RESERVED_HEADERS = new Set(['authorization', 'content-type', 'webhook-id', 'webhook-timestamp', 'webhook-signature']);
const otherHeaders = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 20 }).filter((name) => !RESERVED_HEADERS.has(name.toLowerCase())),
  fc.string({ maxLength: 60 }),
  { maxKeys: 5 },
);

interface Request {
  delivery: BodyDelivery;
  auth: Auth;
  authName: string;
  contentType: string | undefined;
  other: Record<string, string>;
}

const anyRequest: fc.Arbitrary<Request> = fc.record({
  delivery: anyDelivery,
  auth: authorization,
  authName: fc.mixedCase(fc.constant('authorization')),
  contentType,
  other: otherHeaders,
});

function toEvent(request: Request, extraHeaders: Record<string, string> = {}): APIGatewayProxyEventV2 {
  const event = httpApiEvent({});
  const headers: Record<string, string> = { ...request.other, ...extraHeaders };
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  if (request.auth.value !== undefined) headers[request.authName] = request.auth.value;
  event.headers = headers;
  event.body = request.delivery.body;
  event.isBase64Encoded = request.delivery.isBase64Encoded;
  return event;
}

function decodedBody(event: APIGatewayProxyEventV2): Buffer {
  return Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------------

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * Whether a parsed body passes ingest's nesting or element bound, counted on the value (not the
 * text, as ingest does): every array and object is one element, and so is each value after its first.
 */
function pastJsonBounds(value: unknown): boolean {
  let elements = 0;
  let deepest = 0;
  // A stack, not recursion: the fuzzer nests 20,000 levels deep.
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    deepest = Math.max(deepest, depth);
    const children = Array.isArray(node) ? node : Object.values(node);
    elements += 1 + Math.max(0, children.length - 1);
    for (const child of children) stack.push([child, depth + 1]);
  }
  return deepest > JSON_BOUNDS.maxDepth || elements > JSON_BOUNDS.maxElements;
}

/**
 * What holds for every answer, whatever the request. `authorised`: whether the request passed the
 * bearer (and, when configured, signature) checks, as the test constructed it.
 */
function checkInvariants(event: APIGatewayProxyEventV2, response: APIGatewayProxyStructuredResultV2, authorised: boolean): void {
  const status = response.statusCode ?? 0;
  expect(ALLOWED_STATUSES).toContain(status);
  expect(response.headers?.['content-type']).toBe('application/json');
  const payload = JSON.parse(String(response.body)) as Record<string, any>;
  const sends = sqsMock.commandCalls(SendMessageCommand);

  if (status >= 300) {
    expect(Object.keys(payload)).toEqual(['error']);
    expect(typeof payload.error.code).toBe('string');
    expect(payload.error.code.length).toBeGreaterThan(0);
    expect(typeof payload.error.message).toBe('string');
    expect(payload.error.message.trim().length).toBeGreaterThan(0);
  }

  // Queued iff 202, and then exactly once.
  expect(sends).toHaveLength(status === 202 ? 1 : 0);

  if (!authorised) {
    expect(status).toBe(401);
    return;
  }
  expect(status).not.toBe(401);

  const bytes = decodedBody(event);
  if (bytes.length > MAX_BODY_BYTES) {
    expect(status).toBe(413);
    expect(payload.error.code).toBe('body_too_large');
    return;
  }

  const parsed = tryParse(bytes.toString('utf8'));
  if (!parsed.ok) {
    // Which is found first depends on where the text goes wrong: its nesting may pass the bound before it stops being JSON.
    expect([400, 413]).toContain(status);
    expect(payload.error.code).toBe(status === 400 ? 'invalid_json' : 'body_too_complex');
    return;
  }
  if (pastJsonBounds(parsed.value)) {
    expect(status).toBe(413);
    expect(payload.error.code).toBe('body_too_complex');
    return;
  }
  expect(status).not.toBe(413);
  if (!isRecord(parsed.value)) {
    expect(status).toBe(400);
    expect(payload.error.code).toBe('invalid_body');
    return;
  }
  expect([200, 202, 422]).toContain(status);

  const root = parsed.value;
  const eventObject = isRecord(root.event) ? root.event : root;
  if (status === 200) {
    expect(payload.status).toBe('ignored');
    expect(eventObject.event).not.toBe(REFERRAL_EVENT);
  }
  if (status === 202) {
    // Only the referral event, with a uuid, and emails the queue message validates.
    expect(eventObject.event).toBe(REFERRAL_EVENT);
    expect(typeof eventObject.uuid).toBe('string');
    expect(eventObject.uuid).toMatch(UUID);
    // The worker must be able to read everything ingest queues, or the referral is dead-lettered.
    const message = parseReferral(sends[0].args[0].input.MessageBody ?? '');
    if (message === undefined) throw new Error('ingest queued a message the worker cannot read');
    // Nor one the worker refuses before its first Shopify call, or Customer.io after it.
    expect(referralLimitProblem(message)).toBeUndefined();
    expect(message.customerEmail).toBe(message.redeemerEmail);
    expect(message.eventId).toBe((eventObject.uuid as string).toLowerCase());
    expect(message.eventName).toBe(REFERRAL_EVENT);
    expect(payload).toEqual({ status: 'queued', eventId: message.eventId });
    expect(sends[0].args[0].input.MessageAttributes?.eventId?.StringValue).toBe(message.eventId);
  }
}

async function run(handler: typeof plainHandler, event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  sqsMock.resetHistory();
  return handler(event);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe(`ingest under fuzzing (${RUNS} runs per property)`, () => {
  it(
    'answers any request with an allowed status, a JSON error for every refusal, and queues iff 202',
    async () => {
      const seen = new Set<number>();
      await fc.assert(
        fc.asyncProperty(anyRequest, async (request) => {
          const event = toEvent(request);
          const response = await run(plainHandler, event);
          checkInvariants(event, response, request.auth.valid);
          seen.add(response.statusCode ?? 0);
        }),
        { numRuns: RUNS },
      );
      // The generators reach every answer, so the invariants above were exercised on each.
      if (RUNS >= 300) expect([...seen].sort()).toEqual([...ALLOWED_STATUSES].sort());
    },
    TIMEOUT_MS,
  );

  it(
    'queues every well-formed referral exactly once, whatever the content type, encoding and formatting',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          validReferral,
          fc.constantFrom(0, 2),
          contentType,
          fc.boolean(),
          otherHeaders,
          async ({ body, expected }, indent, type, base64, other) => {
            const text = JSON.stringify(body, null, indent);
            const event = toEvent({
              delivery: { body: base64 ? Buffer.from(text).toString('base64') : text, isBase64Encoded: base64 },
              auth: { value: `Bearer ${BEARER}`, valid: true },
              authName: 'authorization',
              contentType: type,
              other,
            });
            const response = await run(plainHandler, event);
            checkInvariants(event, response, true);
            expect(response.statusCode).toBe(202);
            const message = JSON.parse(sqsMock.commandCalls(SendMessageCommand)[0].args[0].input.MessageBody ?? '');
            expect(message).toMatchObject({ v: 1, eventName: REFERRAL_EVENT, ...expected });
          },
        ),
        { numRuns: RUNS },
      );
    },
    TIMEOUT_MS,
  );

  it(
    'never answers 5xx to a valid referral with one field changed, removed or retyped',
    async () => {
      const paths: (string | number)[][] = [
        [],
        ['event'],
        ['event', 'uuid'],
        ['event', 'event'],
        ['event', 'properties'],
        ['event', 'properties', 'referrer_email'],
        ['event', 'properties', 'redeemer_email'],
        ['event', 'distinct_id'],
        ['event', 'timestamp'],
        ['person'],
        ['person', 'properties'],
        ['person', 'properties', 'email'],
        ['uuid'],
        ['properties', 'referrer_email'],
      ];
      const mutation = fc.record({
        path: fc.constantFrom(...paths),
        op: fc.constantFrom('set', 'delete'),
        value: fc.oneof(json, anyEmail, uuidLike, eventName, fc.constant(undefined)),
      });
      await fc.assert(
        fc.asyncProperty(validReferral, mutation, fc.boolean(), async ({ body }, { path, op, value }, base64) => {
          const mutated = mutate(body, path, op, value);
          const text = JSON.stringify(mutated) ?? '';
          const event = toEvent({
            delivery: { body: base64 ? Buffer.from(text).toString('base64') : text, isBase64Encoded: base64 },
            auth: { value: `Bearer ${BEARER}`, valid: true },
            authName: 'authorization',
            contentType: 'application/json',
            other: {},
          });
          const response = await run(plainHandler, event);
          expect(response.statusCode).toBeLessThan(500);
          checkInvariants(event, response, true);
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT_MS,
  );

  it(
    'with a signing secret: 202 only for a correct signature, a 401 signature code otherwise, never 5xx',
    async () => {
      const signing = fc.oneof(
        { weight: 3, arbitrary: fc.constant({ kind: 'correct' as const }) },
        fc.constant({ kind: 'none' as const }),
        fc.record({
          kind: fc.constant('random' as const),
          id: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
          timestamp: fc.option(fc.oneof(fc.integer({ min: -1e6, max: 2e9 }).map(String), fc.string({ maxLength: 12 })), { nil: undefined }),
          signature: fc.option(
            fc.oneof(
              fc.string({ maxLength: 60 }),
              fc.base64String().map((s) => `v1,${s}`),
            ),
            { nil: undefined },
          ),
        }),
        fc.record({
          kind: fc.constant('stale' as const),
          offset: fc.oneof(fc.integer({ min: 301, max: 1e6 }), fc.integer({ min: -1e6, max: -301 })),
        }),
        fc.record({ kind: fc.constant('tampered' as const), field: fc.constantFrom('id', 'timestamp', 'body') }),
      );
      await fc.assert(
        fc.asyncProperty(anyRequest, signing, async (request, sign) => {
          const body = decodedBody(toEvent(request));
          const id = 'msg_fuzz';
          const now = String(NOW_MS / 1000);
          let headers: Record<string, string> = {};
          let signedCorrectly = false;
          switch (sign.kind) {
            case 'correct':
              headers = {
                'webhook-id': id,
                'webhook-timestamp': now,
                'webhook-signature': signWebhook({ secret: SIGNING_SECRET, id, timestamp: now, body }),
              };
              signedCorrectly = true;
              break;
            case 'stale': {
              const ts = String(NOW_MS / 1000 + sign.offset);
              headers = {
                'webhook-id': id,
                'webhook-timestamp': ts,
                'webhook-signature': signWebhook({ secret: SIGNING_SECRET, id, timestamp: ts, body }),
              };
              break;
            }
            case 'tampered': {
              const signature = signWebhook({
                secret: SIGNING_SECRET,
                id: sign.field === 'id' ? `${id}x` : id,
                timestamp: sign.field === 'timestamp' ? String(NOW_MS / 1000 - 1) : now,
                body: sign.field === 'body' ? Buffer.concat([body, Buffer.from(' ')]) : body,
              });
              headers = { 'webhook-id': id, 'webhook-timestamp': now, 'webhook-signature': signature };
              break;
            }
            case 'random':
              if (sign.id !== undefined) headers['webhook-id'] = sign.id;
              if (sign.timestamp !== undefined) headers['webhook-timestamp'] = sign.timestamp;
              if (sign.signature !== undefined) headers['webhook-signature'] = sign.signature;
              break;
            default:
              break;
          }
          const event = toEvent(request, headers);
          const response = await run(signedHandler, event);
          const status = response.statusCode ?? 0;
          expect(status).toBeLessThan(500);
          if (request.auth.valid && !signedCorrectly) {
            expect(status).toBe(401);
            expect(SIGNATURE_CODES).toContain(JSON.parse(String(response.body)).error.code);
          }
          checkInvariants(event, response, request.auth.valid && signedCorrectly);
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT_MS,
  );
});

/** A copy of `body` with the value at `path` replaced or removed (creating parents as needed). */
function mutate(body: unknown, path: (string | number)[], op: 'set' | 'delete', value: unknown): unknown {
  if (path.length === 0) return op === 'delete' ? undefined : value;
  const copy: unknown = JSON.parse(JSON.stringify(body));
  let cursor = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) {
    if (!isRecord(cursor[key])) cursor[key] = {};
    cursor = cursor[key] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1];
  if (op === 'delete') delete cursor[last];
  else cursor[last] = value;
  return copy;
}
