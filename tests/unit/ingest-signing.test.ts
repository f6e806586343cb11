import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { randomUUID } from 'node:crypto';
import { loadIngestConfig, type IngestConfig } from '../../lib/infra/config';
import { signWebhook } from '../../lib/inbound/signature';
import { makeIngestHandler } from '../../functions/ingest';
import { httpApiEvent } from '../../local/apigw';

const BEARER = 'test-webhook-secret-0123456789abcdef';
const SIGNING_SECRET = `whsec_${Buffer.from('ingest-signing-test-key-32-bytes').toString('base64')}`;
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue';
/** The handler's clock, pinned: signatures are made for this instant. */
const NOW_MS = 1_763_633_730_000;
const NOW_S = String(NOW_MS / 1000);

const BASE_CONFIG: IngestConfig = {
  webhookSecret: BEARER,
  referralEvent: 'referral redeemed',
  referrerEmailProperty: 'referrer_email',
  redeemerEmailProperty: 'redeemer_email',
  queueUrl: QUEUE_URL,
};
const SIGNED_CONFIG: IngestConfig = { ...BASE_CONFIG, webhookSigningSecret: SIGNING_SECRET };

const sqsMock = mockClient(SQSClient);

function handler(config: IngestConfig = SIGNED_CONFIG) {
  return makeIngestHandler({ sqs: new SQSClient({}), config: async () => config, now: () => NOW_MS });
}

function referralJson(uuid = randomUUID()): string {
  return JSON.stringify({
    event: {
      uuid,
      event: 'referral redeemed',
      distinct_id: 'redeemer@example.com',
      properties: { referrer_email: 'referrer@example.com', redeemer_email: 'redeemer@example.com' },
      timestamp: '2025-11-20T10:15:30.000Z',
    },
    person: { properties: { email: 'redeemer@example.com' } },
  });
}

function signedHeaders(body: string | Buffer, overrides: { id?: string; timestamp?: string; secret?: string } = {}) {
  const id = overrides.id ?? 'msg_ingest_1';
  const timestamp = overrides.timestamp ?? NOW_S;
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': signWebhook({ secret: overrides.secret ?? SIGNING_SECRET, id, timestamp, body }),
  };
}

function request(body: string | Buffer, headers: Record<string, string | undefined>): APIGatewayProxyEventV2 {
  return httpApiEvent({ body, headers: { 'content-type': 'application/json', authorization: `Bearer ${BEARER}`, ...headers } });
}

function bodyOf(response: APIGatewayProxyStructuredResultV2): {
  error?: { code: string; message: string };
  status?: string;
  eventId?: string;
} {
  return JSON.parse(response.body ?? '');
}

beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'message-1' });
});

describe('ingest with a signing secret configured', () => {
  it('answers 202 and queues once for a signed request with the bearer token', async () => {
    // Prepare
    const uuid = randomUUID();
    const body = referralJson(uuid);

    // Act
    const response = await handler()(request(body, signedHeaders(body)));

    // Assess
    expect(response.statusCode).toBe(202);
    expect(bodyOf(response)).toEqual({ status: 'queued', eventId: uuid });
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
  });

  it('verifies the decoded bytes of a base64-encoded body', async () => {
    // Prepare: a non-JSON content type makes API Gateway base64-encode the body
    const body = referralJson();
    const event = httpApiEvent({
      body: Buffer.from(body),
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${BEARER}`, ...signedHeaders(body) },
    });

    // Act
    const response = await handler()(event);

    // Assess
    expect(event.isBase64Encoded).toBe(true);
    expect(response.statusCode).toBe(202);
  });

  it('verifies the bytes as sent, not a re-serialisation: whitespace and key order are signed', async () => {
    // Prepare
    const body = `  ${JSON.stringify(JSON.parse(referralJson()), null, 2)}\n`;

    // Act
    const response = await handler()(request(body, signedHeaders(body)));

    // Assess
    expect(response.statusCode).toBe(202);
  });

  it('accepts signature headers whatever the case of their names', async () => {
    // Prepare
    const body = referralJson();
    const signed = signedHeaders(body);
    const event = request(body, {});
    event.headers = {
      Authorization: `Bearer ${BEARER}`,
      'Webhook-Id': signed['webhook-id'],
      'WEBHOOK-TIMESTAMP': signed['webhook-timestamp'],
      'Webhook-Signature': signed['webhook-signature'],
    };

    // Act
    const response = await handler()(event);

    // Assess
    expect(response.statusCode).toBe(202);
  });

  it('answers 401 missing_signature to an unsigned request and queues nothing', async () => {
    // Act
    const response = await handler()(request(referralJson(), {}));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(response.headers?.['content-type']).toBe('application/json');
    expect(bodyOf(response)).toEqual({ error: { code: 'missing_signature', message: expect.stringMatching(/.+/) } });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it.each([
    [
      'signed with another key',
      (body: string) => signedHeaders(body, { secret: `whsec_${Buffer.from('some-other-key').toString('base64')}` }),
    ],
    ['signed over another body', (body: string) => signedHeaders(body.replace('referrer@', 'attacker@'))],
    ['with a swapped webhook-id', (body: string) => ({ ...signedHeaders(body), 'webhook-id': 'msg_other' })],
    ['with a garbage signature', (body: string) => ({ ...signedHeaders(body), 'webhook-signature': 'v1,garbage' })],
  ])('answers 401 bad_signature to a request %s and queues nothing', async (_label, headersFor) => {
    // Prepare
    const body = referralJson();

    // Act
    const response = await handler()(request(body, headersFor(body)));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error?.code).toBe('bad_signature');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 401 stale_timestamp to a correctly signed request from 10 minutes ago', async () => {
    // Prepare
    const body = referralJson();

    // Act
    const response = await handler()(request(body, signedHeaders(body, { timestamp: String(NOW_MS / 1000 - 600) })));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error?.code).toBe('stale_timestamp');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 401 invalid_timestamp to a non-numeric webhook-timestamp', async () => {
    // Prepare
    const body = referralJson();

    // Act
    const response = await handler()(request(body, { ...signedHeaders(body), 'webhook-timestamp': 'yesterday' }));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error?.code).toBe('invalid_timestamp');
  });

  it('answers 401 unauthorized to a validly signed request without the bearer token', async () => {
    // Prepare
    const body = referralJson();

    // Act
    const response = await handler()(request(body, { ...signedHeaders(body), authorization: undefined }));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error?.code).toBe('unauthorized');
    expect(response.headers?.['www-authenticate']).toBe('Bearer');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 401 unauthorized to a validly signed request with a wrong bearer token', async () => {
    // Prepare
    const body = referralJson();

    // Act
    const response = await handler()(request(body, { ...signedHeaders(body), authorization: 'Bearer nope' }));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error?.code).toBe('unauthorized');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('checks the signature before reading the body: an unsigned non-JSON body is 401, not 400', async () => {
    // Act
    const response = await handler()(request('not json', {}));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error?.code).toBe('missing_signature');
  });

  it('still answers 400 to a correctly signed body that is not JSON', async () => {
    // Act
    const response = await handler()(request('not json', signedHeaders('not json')));

    // Assess
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response).error?.code).toBe('invalid_json');
  });

  it('answers 503 not_configured, without echoing it, when the signing secret is not usable', async () => {
    // Prepare: the settings as deployed, through the validating loader (the one misconfigured path)
    const env = { WEBHOOK_SECRET: BEARER, QUEUE_URL, WEBHOOK_SIGNING_SECRET: 'whsec_***not-base64***' };
    const ingest = makeIngestHandler({ sqs: new SQSClient({}), config: async () => loadIngestConfig(env), now: () => NOW_MS });
    const body = referralJson();

    // Act
    const response = await ingest(request(body, signedHeaders(body)));

    // Assess
    expect(response.statusCode).toBe(503);
    expect(bodyOf(response).error?.code).toBe('not_configured');
    expect(response.body).not.toContain('not-base64');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('uses the real clock by default', async () => {
    // Prepare: signed now, handler without an injected clock
    const body = referralJson();
    const timestamp = String(Math.floor(Date.now() / 1000));
    const live = makeIngestHandler({ sqs: new SQSClient({}), config: async () => SIGNED_CONFIG });

    // Act
    const response = await live(request(body, signedHeaders(body, { timestamp })));

    // Assess
    expect(response.statusCode).toBe(202);
  });
});

describe('ingest without a signing secret', () => {
  it('accepts an unsigned request with the bearer token, as before', async () => {
    // Prepare
    const uuid = randomUUID();

    // Act
    const response = await handler(BASE_CONFIG)(request(referralJson(uuid), {}));

    // Assess
    expect(response.statusCode).toBe(202);
    expect(bodyOf(response)).toEqual({ status: 'queued', eventId: uuid });
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
  });

  it('ignores signature headers, even wrong ones', async () => {
    // Act
    const response = await handler(BASE_CONFIG)(
      request(referralJson(), { 'webhook-id': 'x', 'webhook-timestamp': '1', 'webhook-signature': 'v1,nonsense' }),
    );

    // Assess
    expect(response.statusCode).toBe(202);
  });

  it('treats a blank signing secret as none', async () => {
    // Act: loadIngestConfig turns '' into undefined; a hand-built config may still carry ''
    const response = await handler({ ...BASE_CONFIG, webhookSigningSecret: '' })(request(referralJson(), {}));

    // Assess
    expect(response.statusCode).toBe(202);
  });

  it('still requires the bearer token', async () => {
    // Act
    const response = await handler(BASE_CONFIG)(request(referralJson(), { authorization: undefined }));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).error?.code).toBe('unauthorized');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });
});
