import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { MAX_BODY_BYTES, type IngestConfig } from '../../lib/infra/config';
import { PermanentError } from '../../lib/domain/errors';
import { parseReferral } from '../../lib/domain/referral';
import { makeIngestHandler } from '../../functions/ingest';
import { httpApiEvent } from '../../local/apigw';
import { loadDefaultBody } from '../support/fixtures';

const SECRET = 'test-webhook-secret-0123456789';
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue';

const CONFIG: IngestConfig = {
  webhookSecret: SECRET,
  referralEvent: 'referral redeemed',
  referrerEmailProperty: 'referrer_email',
  redeemerEmailProperty: 'redeemer_email',
  queueUrl: QUEUE_URL,
};

const DEFAULT_BODY = loadDefaultBody();
const FIXTURE = JSON.parse(DEFAULT_BODY) as { event: { uuid: string; event: string; properties: Record<string, string> } };
const EVENT_ID = FIXTURE.event.uuid.toLowerCase();

const sqsMock = mockClient(SQSClient);

function handler(config: () => Promise<IngestConfig> = async () => CONFIG) {
  return makeIngestHandler({ sqs: new SQSClient({}), config });
}

function request(body: string | Buffer = DEFAULT_BODY, headers: Record<string, string> = {}): APIGatewayProxyEventV2 {
  return httpApiEvent({ body, headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}`, ...headers } });
}

function bodyOf(response: APIGatewayProxyStructuredResultV2): Record<string, unknown> {
  return JSON.parse(response.body ?? '') as Record<string, unknown>;
}

/** The error body every 4xx/5xx must have. */
const errorBody = (code: string) => ({ error: { code, message: expect.any(String) } });

beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'message-1' });
});

describe('ingest: authorisation', () => {
  it('answers 401 and queues nothing without an Authorization header', async () => {
    // Prepare
    const event = httpApiEvent({ body: DEFAULT_BODY, headers: { 'content-type': 'application/json' } });

    // Act
    const response = await handler()(event);

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response)).toEqual(errorBody('unauthorized'));
    expect(response.headers?.['www-authenticate']).toBe('Bearer');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 401 and queues nothing with the wrong bearer token', async () => {
    // Act
    const response = await handler()(request(DEFAULT_BODY, { authorization: 'Bearer not-the-secret' }));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response)).toEqual(errorBody('unauthorized'));
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 401 to the right secret sent without the Bearer scheme', async () => {
    // Act
    const response = await handler()(request(DEFAULT_BODY, { authorization: SECRET }));

    // Assess
    expect(response.statusCode).toBe(401);
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('checks the token before reading the body', async () => {
    // Act
    const response = await handler()(request('not json', { authorization: 'Bearer wrong' }));

    // Assess
    expect(response.statusCode).toBe(401);
  });

  it('accepts the bearer scheme in any case', async () => {
    // Act
    const response = await handler()(request(DEFAULT_BODY, { authorization: `bEARER ${SECRET}` }));

    // Assess
    expect(response.statusCode).toBe(202);
  });

  it('accepts the Authorization header whatever the case of its name', async () => {
    // Prepare: API Gateway lowercases header names, but ingest must not rely on it.
    const event = request();
    event.headers = { 'Content-Type': 'application/json', AUTHORIZATION: `Bearer ${SECRET}` };

    // Act
    const response = await handler()(event);

    // Assess
    expect(response.statusCode).toBe(202);
  });
});

describe('ingest: queueing a referral', () => {
  it('answers 202 with the eventId once the referral is queued', async () => {
    // Act
    const response = await handler()(request());

    // Assess
    expect(response.statusCode).toBe(202);
    expect(response.headers?.['content-type']).toBe('application/json');
    expect(bodyOf(response)).toEqual({ status: 'queued', eventId: EVENT_ID });
  });

  it('sends exactly one message to the queue, whose body is the referral', async () => {
    // Act
    await handler()(request());

    // Assess
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    const input = sqsMock.commandCalls(SendMessageCommand)[0].args[0].input;
    expect(input.QueueUrl).toBe(QUEUE_URL);
    const referral = parseReferral(input.MessageBody ?? '');
    expect(referral).toMatchObject({
      v: 1,
      eventId: EVENT_ID,
      eventName: 'referral redeemed',
      referrerEmail: FIXTURE.event.properties.referrer_email.trim().toLowerCase(),
      redeemerEmail: FIXTURE.event.properties.redeemer_email.trim().toLowerCase(),
    });
    expect(input.MessageAttributes?.eventId).toEqual({ DataType: 'String', StringValue: EVENT_ID });
  });

  it("queues a referral from a PostHog person with a megabyte of properties, and only the referral's fields", async () => {
    // Prepare: PostHog sends the whole person; refusing a big one with a 4xx would lose the referral (issue #10, defect 9)
    const body = JSON.parse(DEFAULT_BODY) as { person: { properties: Record<string, unknown> } };
    for (let i = 0; i < 10_000; i++) body.person.properties[`$initial_property_${i}`] = 'x'.repeat(100);
    const text = JSON.stringify(body);

    // Act
    const response = await handler()(request(text));

    // Assess
    expect(Buffer.byteLength(text)).toBeGreaterThan(1024 * 1024);
    expect(response.statusCode).toBe(202);
    const message = sqsMock.commandCalls(SendMessageCommand)[0].args[0].input.MessageBody ?? '';
    expect(Object.keys(JSON.parse(message)).sort()).toEqual([
      'customerEmail',
      'distinctId',
      'eventId',
      'eventName',
      'occurredAt',
      'personEmail',
      'personId',
      'redeemerEmail',
      'referrerEmail',
      'v',
    ]);
    expect(Buffer.byteLength(message)).toBeLessThan(1024);
  });

  it('leaves an oversized distinct id out of the message rather than queueing megabytes', async () => {
    // Prepare
    const body = JSON.parse(DEFAULT_BODY) as { event: { distinct_id: string } };
    body.event.distinct_id = 'd'.repeat(2 * 1024 * 1024);

    // Act
    const response = await handler()(request(JSON.stringify(body)));

    // Assess
    expect(response.statusCode).toBe(202);
    const referral = parseReferral(sqsMock.commandCalls(SendMessageCommand)[0].args[0].input.MessageBody ?? '');
    expect(referral?.distinctId).toBeUndefined();
  });

  it('answers 422 redeemer_email_too_long, before anything is queued, to a redeemer Customer.io could not be mailed at', async () => {
    // Prepare: valid as an email (254 characters at most), but over Customer.io's 150-byte identifier (issue #10, defect 2)
    const body = JSON.parse(DEFAULT_BODY) as { event: { properties: Record<string, string> } };
    body.event.properties.redeemer_email = `${'r'.repeat(151 - '@example.com'.length)}@example.com`;

    // Act
    const response = await handler()(request(JSON.stringify(body)));

    // Assess
    expect(body.event.properties.redeemer_email).toHaveLength(151);
    expect(response.statusCode).toBe(422);
    expect(bodyOf(response)).toEqual(errorBody('redeemer_email_too_long'));
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('accepts a base64-encoded body', async () => {
    // Prepare
    const event = httpApiEvent({
      body: Buffer.from(DEFAULT_BODY),
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${SECRET}` },
    });

    // Act
    const response = await handler()(event);

    // Assess
    expect(event.isBase64Encoded).toBe(true);
    expect(response.statusCode).toBe(202);
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
  });

  it('answers 200 ignored to another event and queues nothing', async () => {
    // Prepare
    const other = JSON.parse(DEFAULT_BODY) as { event: { event: string } };
    other.event.event = '$pageview';

    // Act
    const response = await handler()(request(JSON.stringify(other)));

    // Assess
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ status: 'ignored', eventId: FIXTURE.event.uuid });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });
});

describe("ingest: a redeemer's qualifying or refund event", () => {
  const personEventBody = (event: Record<string, unknown>) =>
    JSON.stringify({
      event: {
        uuid: EVENT_ID,
        event: 'subscription paid',
        distinct_id: 'grace',
        timestamp: '2026-11-21T10:00:00Z',
        properties: {},
        ...event,
      },
      person: { id: 'person-1', properties: { email: 'grace@example.org', big: 'x'.repeat(10_000) } },
    });
  const qualifying = async () => ({ ...CONFIG, qualifyEvent: 'subscription paid' });

  it('queues QUALIFY_EVENT as a person event, only its few fields, and answers 202', async () => {
    // Act
    const response = await handler(qualifying)(request(personEventBody({})));

    // Assess
    expect(response.statusCode).toBe(202);
    expect(bodyOf(response)).toEqual({ status: 'queued', eventId: EVENT_ID });
    const message = JSON.parse(sqsMock.commandCalls(SendMessageCommand)[0].args[0].input.MessageBody ?? '') as Record<string, unknown>;
    expect(message).toEqual({
      v: 1,
      kind: 'person-event',
      role: 'qualify',
      eventId: EVENT_ID,
      eventName: 'subscription paid',
      occurredAt: '2026-11-21T10:00:00.000Z',
      personId: 'person-1',
      distinctId: 'grace',
      email: 'grace@example.org',
    });
  });

  it('answers 422 to one without a time and queues nothing', async () => {
    // Act
    const response = await handler(qualifying)(request(personEventBody({ timestamp: undefined })));

    // Assess
    expect(response.statusCode).toBe(422);
    expect(bodyOf(response)).toEqual(errorBody('invalid_event_timestamp'));
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 0);
  });

  it('answers 200 ignored while QUALIFY_EVENT is unset, and queues nothing', async () => {
    // Act
    const response = await handler()(request(personEventBody({})));

    // Assess
    expect(response.statusCode).toBe(200);
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 0);
  });
});

describe('ingest: refusals', () => {
  it('answers 400 invalid_json to a body that is not JSON and queues nothing', async () => {
    // Act
    const response = await handler()(request('this is not json'));

    // Assess
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response)).toEqual(errorBody('invalid_json'));
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it.each([
    ['an empty body', '', 400, 'invalid_json'],
    ['an array', '[]', 400, 'invalid_body'],
    ['an event without a name', JSON.stringify({ event: { uuid: FIXTURE.event.uuid } }), 422, 'missing_event_name'],
    ['an invalid uuid', JSON.stringify({ event: { ...FIXTURE.event, uuid: 'not-a-uuid' } }), 422, 'invalid_event_uuid'],
    [
      'a missing referrer email',
      JSON.stringify({ event: { ...FIXTURE.event, properties: { redeemer_email: 'redeemer@example.com' } } }),
      422,
      'missing_referrer_email',
    ],
  ])('answers %s with %i %s as a JSON error and queues nothing', async (_label, body, status, code) => {
    // Act
    const response = await handler()(request(body));

    // Assess
    expect(response.statusCode).toBe(status);
    expect(response.headers?.['content-type']).toBe('application/json');
    expect(bodyOf(response)).toEqual(errorBody(code));
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 413 to a body larger than 6 MB, more than Lambda can be invoked with, and queues nothing', async () => {
    // Prepare
    const body = DEFAULT_BODY + ' '.repeat(MAX_BODY_BYTES + 1 - Buffer.byteLength(DEFAULT_BODY));

    // Act
    const response = await handler()(request(body));

    // Assess
    expect(Buffer.byteLength(body)).toBe(6 * 1024 * 1024 + 1);
    expect(response.statusCode).toBe(413);
    expect(bodyOf(response)).toEqual(errorBody('body_too_large'));
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('accepts a body of exactly 6 MB', async () => {
    // Prepare
    const body = DEFAULT_BODY + ' '.repeat(MAX_BODY_BYTES - Buffer.byteLength(DEFAULT_BODY));

    // Act
    const response = await handler()(request(body));

    // Assess
    expect(response.statusCode).toBe(202);
  });

  it('measures a base64-encoded body after decoding it', async () => {
    // Prepare: 5 MB decoded is 6.7 MB as base64, and must still be accepted.
    const body = Buffer.from(DEFAULT_BODY + ' '.repeat(5 * 1024 * 1024));
    const event = httpApiEvent({ body, headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${SECRET}` } });

    // Act
    const response = await handler()(event);

    // Assess
    expect((event.body ?? '').length).toBeGreaterThan(MAX_BODY_BYTES);
    expect(response.statusCode).toBe(202);
  });
});

describe('ingest: when something is down', () => {
  it('answers 503 queue_unavailable, never 202, when SQS refuses the message', async () => {
    // Prepare
    sqsMock.on(SendMessageCommand).rejects(Object.assign(new Error('service unavailable'), { name: 'ServiceUnavailable' }));

    // Act
    const response = await handler()(request());

    // Assess
    expect(response.statusCode).toBe(503);
    expect(bodyOf(response)).toEqual(errorBody('queue_unavailable'));
  });

  it('answers 503 not_configured and queues nothing when the config cannot be loaded', async () => {
    // Prepare
    const config = async (): Promise<IngestConfig> => {
      throw new PermanentError('config_invalid', 'configuration: WEBHOOK_SECRET is not set');
    };

    // Act
    const response = await handler(config)(request());

    // Assess
    expect(response.statusCode).toBe(503);
    expect(bodyOf(response)).toEqual(errorBody('not_configured'));
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 503 not_configured when loading the config fails transiently', async () => {
    // Prepare
    const config = async (): Promise<IngestConfig> => {
      throw new Error('Secrets Manager timed out');
    };

    // Act
    const response = await handler(config)(request());

    // Assess
    expect(response.statusCode).toBe(503);
    expect(bodyOf(response)).toEqual(errorBody('not_configured'));
  });
});
