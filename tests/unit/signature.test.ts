import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidSigningSecretError, signWebhook, verifyWebhookSignature } from '../../lib/inbound/signature';
import { thrown } from '../support/failure';

/** The shared Standard Webhooks vector (CONTRACTS.md §1), beside the repo as in CI. */
const SHARED = path.resolve(__dirname, '../../../shared');
const VECTOR_FILE = path.join(SHARED, 'fixtures/standard-webhooks-vector.json');
const HAVE_VECTOR = existsSync(VECTOR_FILE);

interface Vector {
  secret: string;
  headers: { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string };
  body_file: string;
}

function loadVector(): { vector: Vector; body: string; nowMs: number } {
  const vector = JSON.parse(readFileSync(VECTOR_FILE, 'utf8')) as Vector;
  // "body is the file content with trailing newline stripped"
  const body = readFileSync(path.join(SHARED, 'fixtures', vector.body_file), 'utf8').replace(/\r?\n$/, '');
  // A clock pinned 30 s after the vector was signed: inside the 5-minute tolerance.
  const nowMs = (Number(vector.headers['webhook-timestamp']) + 30) * 1000;
  return { vector, body, nowMs };
}

if (!HAVE_VECTOR) {
  // Visible in the run output rather than a silent pass.
  console.warn(`signature.test.ts: ${VECTOR_FILE} is absent, so the shared Standard Webhooks vector tests are skipped`);
}
const describeWithVector = HAVE_VECTOR ? describe : describe.skip;

// Self-made material for the cases that do not need the shared vector.
const KEY = Buffer.from('a-32-byte-key-for-unit-tests-ok!');
const SECRET = `whsec_${KEY.toString('base64')}`;
const ID = 'msg_unit_1';
const NOW_MS = 1_763_633_730_000;
const TS = String(NOW_MS / 1000);
const BODY = '{"event":{"uuid":"0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61","event":"referral redeemed"}}';

/** Independent of lib/signature: HMAC-SHA256(key, "<id>.<ts>.<body>") in base64, per the spec. */
function referenceSignature(key: Buffer, id: string, ts: string, body: string | Buffer): string {
  return `v1,${createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(`${id}.${ts}.`), Buffer.from(body)]))
    .digest('base64')}`;
}

const verify = (overrides: Partial<Parameters<typeof verifyWebhookSignature>[0]> = {}) =>
  verifyWebhookSignature({
    secret: SECRET,
    id: ID,
    timestamp: TS,
    signatureHeader: referenceSignature(KEY, ID, TS, BODY),
    body: BODY,
    now: NOW_MS,
    ...overrides,
  });

describeWithVector('verifyWebhookSignature: the shared Standard Webhooks vector', () => {
  it('verifies the vector at a clock pinned near its timestamp', () => {
    // Prepare
    const { vector, body, nowMs } = loadVector();

    // Act
    const result = verifyWebhookSignature({
      secret: vector.secret,
      id: vector.headers['webhook-id'],
      timestamp: vector.headers['webhook-timestamp'],
      signatureHeader: vector.headers['webhook-signature'],
      body: Buffer.from(body, 'utf8'),
      now: nowMs,
    });

    // Assess
    expect(result).toEqual({ ok: true });
  });

  it("produces the vector's signature when signing", () => {
    // Prepare
    const { vector, body } = loadVector();

    // Act
    const signature = signWebhook({
      secret: vector.secret,
      id: vector.headers['webhook-id'],
      timestamp: vector.headers['webhook-timestamp'],
      body,
    });

    // Assess
    expect(signature).toBe(vector.headers['webhook-signature']);
  });

  it('refuses the vector with its trailing newline kept: the signature covers the exact bytes', () => {
    // Prepare
    const { vector, body, nowMs } = loadVector();

    // Act
    const result = verifyWebhookSignature({
      secret: vector.secret,
      id: vector.headers['webhook-id'],
      timestamp: vector.headers['webhook-timestamp'],
      signatureHeader: vector.headers['webhook-signature'],
      body: `${body}\n`,
      now: nowMs,
    });

    // Assess
    expect(result).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it("refuses the vector at today's real clock: its timestamp is long past", () => {
    // Prepare
    const { vector, body } = loadVector();

    // Act
    const result = verifyWebhookSignature({
      secret: vector.secret,
      id: vector.headers['webhook-id'],
      timestamp: vector.headers['webhook-timestamp'],
      signatureHeader: vector.headers['webhook-signature'],
      body,
      now: Number(vector.headers['webhook-timestamp']) * 1000 + 3_600_000,
    });

    // Assess
    expect(result).toMatchObject({ ok: false, code: 'stale_timestamp' });
  });

  it('verifies the vector with the secret given without its whsec_ prefix', () => {
    // Prepare
    const { vector, body, nowMs } = loadVector();

    // Act
    const result = verifyWebhookSignature({
      secret: vector.secret.replace(/^whsec_/, ''),
      id: vector.headers['webhook-id'],
      timestamp: vector.headers['webhook-timestamp'],
      signatureHeader: vector.headers['webhook-signature'],
      body,
      now: nowMs,
    });

    // Assess
    expect(result).toEqual({ ok: true });
  });
});

describe('verifyWebhookSignature: accepting', () => {
  it('accepts a correct v1 signature', () => {
    expect(verify()).toEqual({ ok: true });
  });

  it('accepts a Buffer body equal to the signed string', () => {
    expect(verify({ body: Buffer.from(BODY) })).toEqual({ ok: true });
  });

  it('accepts a signature over non-ASCII bytes', () => {
    // Prepare
    const body = '{"name":"Zoë 🎁 名前"}';

    // Act
    const result = verify({ body: Buffer.from(body), signatureHeader: referenceSignature(KEY, ID, TS, body) });

    // Assess
    expect(result).toEqual({ ok: true });
  });

  it('accepts when one of several space-separated signatures is valid', () => {
    // Prepare: a rotated-out key's signature first, a v2 entry, then ours
    const oldKey = Buffer.from('the-previous-key-being-rotated!!');
    const header = [referenceSignature(oldKey, ID, TS, BODY), 'v2,aGVsbG8=', referenceSignature(KEY, ID, TS, BODY)].join(' ');

    // Act
    const result = verify({ signatureHeader: header });

    // Assess
    expect(result).toEqual({ ok: true });
  });

  it('accepts a secret given without the whsec_ prefix', () => {
    expect(verify({ secret: KEY.toString('base64') })).toEqual({ ok: true });
  });

  it('accepts timestamps up to 5 minutes away in either direction', () => {
    for (const offset of [-300, 300]) {
      // Prepare
      const ts = String(NOW_MS / 1000 + offset);

      // Act
      const result = verify({ timestamp: ts, signatureHeader: referenceSignature(KEY, ID, ts, BODY) });

      // Assess
      expect(result).toEqual({ ok: true });
    }
  });
});

describe('verifyWebhookSignature: refusing', () => {
  it.each([
    ['body', { body: BODY.replace('redeemed', 'Redeemed') }],
    ['body with one trailing space', { body: `${BODY} ` }],
    ['id', { id: 'msg_unit_2' }],
  ])('refuses a tampered %s with bad_signature', (_label, overrides) => {
    expect(verify(overrides)).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it('refuses a tampered timestamp (still within tolerance) with bad_signature', () => {
    expect(verify({ timestamp: String(NOW_MS / 1000 + 1) })).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it('refuses a signature made with another key', () => {
    // Prepare
    const other = Buffer.from('not-the-key-the-receiver-knows!!');

    // Act
    const result = verify({ signatureHeader: referenceSignature(other, ID, TS, BODY) });

    // Assess
    expect(result).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it.each([
    ['the right digest under v2', () => `v2,${referenceSignature(KEY, ID, TS, BODY).slice(3)}`],
    ['the right digest without a version', () => referenceSignature(KEY, ID, TS, BODY).slice(3)],
    ['the right digest under v1a', () => `v1a,${referenceSignature(KEY, ID, TS, BODY).slice(3)}`],
    ['garbage', () => 'garbage'],
    ['v1 with nothing', () => 'v1,'],
    ['v1 with non-base64', () => 'v1,!!!!not base64!!!!'],
    ['v1 with a truncated digest', () => referenceSignature(KEY, ID, TS, BODY).slice(0, 20)],
    ['v1 with a digest one byte short', () => `v1,${Buffer.alloc(31).toString('base64')}`],
    ['v1 with 32 zero bytes', () => `v1,${Buffer.alloc(32).toString('base64')}`],
    ['the bare key', () => `v1,${KEY.toString('base64')}`],
    ['the secret itself', () => `v1,${SECRET}`],
  ])('refuses %s with bad_signature', (_label, header) => {
    expect(verify({ signatureHeader: header() })).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it.each([
    ['6 minutes old', -360],
    ['6 minutes ahead', 360],
    ['301 seconds old', -301],
    ['a day old', -86_400],
  ])('refuses a timestamp %s with stale_timestamp, even when correctly signed', (_label, offset) => {
    // Prepare
    const ts = String(NOW_MS / 1000 + offset);

    // Act
    const result = verify({ timestamp: ts, signatureHeader: referenceSignature(KEY, ID, ts, BODY) });

    // Assess
    expect(result).toMatchObject({ ok: false, code: 'stale_timestamp' });
  });

  it('honours a custom tolerance', () => {
    // Prepare
    const ts = String(NOW_MS / 1000 - 60);

    // Act
    const result = verify({ timestamp: ts, signatureHeader: referenceSignature(KEY, ID, ts, BODY), toleranceSeconds: 30 });

    // Assess
    expect(result).toMatchObject({ ok: false, code: 'stale_timestamp' });
  });

  it.each(['abc', '1763633730.5', '1e9', '-1763633730', '0x69200000', 'Infinity', '17636 33730', '1763633730ms'])(
    'refuses the non-numeric timestamp %p with invalid_timestamp',
    (timestamp) => {
      expect(verify({ timestamp, signatureHeader: referenceSignature(KEY, ID, timestamp, BODY) })).toMatchObject({
        ok: false,
        code: 'invalid_timestamp',
      });
    },
  );

  it.each([
    ['no webhook-id', { id: undefined }],
    ['no webhook-timestamp', { timestamp: undefined }],
    ['no webhook-signature', { signatureHeader: undefined }],
    ['an empty webhook-id', { id: '' }],
    ['a blank webhook-timestamp', { timestamp: '  ' }],
    ['an empty webhook-signature', { signatureHeader: '' }],
    ['none of the three headers', { id: undefined, timestamp: undefined, signatureHeader: undefined }],
  ])('refuses %s with missing_signature', (_label, overrides) => {
    expect(verify(overrides)).toMatchObject({ ok: false, code: 'missing_signature' });
  });

  it('puts neither the secret, the key nor the expected signature in any message', () => {
    // Prepare
    const expected = referenceSignature(KEY, ID, TS, BODY).slice(3);
    const results = [
      verify({ signatureHeader: 'v1,AAAA' }),
      verify({ timestamp: 'x' }),
      verify({ timestamp: String(NOW_MS / 1000 - 3600) }),
      verify({ id: undefined }),
    ];

    // Assess
    for (const result of results) {
      expect(result.ok).toBe(false);
      const text = JSON.stringify(result);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(KEY.toString('base64'));
      expect(text).not.toContain(expected);
      if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
    }
  });
});

describe('verifyWebhookSignature: the configured secret', () => {
  it.each([
    ['an empty key after the prefix', 'whsec_'],
    ['a key that is not base64', 'whsec_not base64!'],
    ['an empty secret', ''],
  ])('throws InvalidSigningSecretError for %s, without echoing it', (_label, secret) => {
    // Act
    const error = thrown(() => verify({ secret }), InvalidSigningSecretError);

    // Assess
    expect(error).toBeInstanceOf(InvalidSigningSecretError);
    if (secret.length > 6) expect(error.message).not.toContain(secret);
  });

  it('ignores whitespace around the configured secret', () => {
    expect(verify({ secret: `  ${SECRET}\n` })).toEqual({ ok: true });
  });
});
