/**
 * The work a body can cause: nesting depth and element count are bounded before the body is
 * parsed (lib/inbound/json-bounds.ts), so a 6 MB body cannot take ingest past its memory, while
 * a large flat PostHog body (a person with many properties) is still queued.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { MAX_BODY_BYTES, type IngestConfig } from '../../lib/infra/config';
import { makeIngestHandler } from '../../functions/ingest';
import { parseWebhook } from '../../lib/inbound/posthog-webhook';
import { JSON_BOUNDS, jsonComplexityProblem } from '../../lib/inbound/json-bounds';
import { httpApiEvent } from '../../local/apigw';
import { loadDefaultBody } from '../support/fixtures';

const SECRET = 'test-webhook-secret-0123456789';
const CONFIG: IngestConfig = {
  webhookSecret: SECRET,
  referralEvent: 'referral redeemed',
  referrerEmailProperty: 'referrer_email',
  redeemerEmailProperty: 'redeemer_email',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
};
const DEFAULT_BODY = loadDefaultBody();

const sqsMock = mockClient(SQSClient);

beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'message-1' });
});

const ingest = (body: string) =>
  makeIngestHandler({ sqs: new SQSClient({}), config: async () => CONFIG })(
    httpApiEvent({ body, headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` } }),
  );
const bodyOf = (response: APIGatewayProxyStructuredResultV2) => JSON.parse(response.body ?? '') as unknown;

/** PostHog's default body, a valid referral, with `extra` spliced in as one more top-level key. */
function referralWith(extra: string): string {
  return `${DEFAULT_BODY.trim().slice(0, -1)},"extra":${extra}}`;
}

/** Fills the rest of 6 MB with `unit` repeated inside a JSON array. */
function sixMegabytesOf(open: string, unit: string, close: string): string {
  const room = MAX_BODY_BYTES - Buffer.byteLength(referralWith('')) - open.length - close.length;
  return `${open}${unit.repeat(Math.floor(room / unit.length))}${close}`;
}

describe('ingest: bodies that cost more than their size', () => {
  it('answers 413 body_too_complex, and queues nothing, to a referral carrying 6 MB of nested arrays', async () => {
    // Prepare
    const depth = Math.floor((MAX_BODY_BYTES - Buffer.byteLength(DEFAULT_BODY) - 20) / 2);
    const body = referralWith(`${'['.repeat(depth)}${']'.repeat(depth)}`);

    // Act
    const response = await ingest(body);

    // Assess
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(response.statusCode).toBe(413);
    expect(bodyOf(response)).toEqual({ error: { code: 'body_too_complex', message: expect.stringContaining('nested') } });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers 413 body_too_complex, and queues nothing, to a referral carrying a million empty objects', async () => {
    // Prepare
    const body = referralWith(sixMegabytesOf('[{}', ',{}', ']'));

    // Act
    const response = await ingest(body);

    // Assess
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(response.statusCode).toBe(413);
    expect(bodyOf(response)).toEqual({ error: { code: 'body_too_complex', message: expect.stringContaining('elements') } });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('queues a referral from a 6 MB PostHog person with 50,000 properties', async () => {
    // Prepare: large but flat, as a real person with many properties is
    const body = JSON.parse(DEFAULT_BODY) as { person: { properties: Record<string, unknown> } };
    const value = 'x'.repeat(Math.floor(MAX_BODY_BYTES / 50_000) - 40);
    for (let i = 0; i < 50_000; i++) body.person.properties[`$initial_property_${i}`] = value;
    const text = JSON.stringify(body);

    // Act
    const response = await ingest(text);

    // Assess
    expect(Buffer.byteLength(text)).toBeGreaterThan(5 * 1024 * 1024);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(response.statusCode).toBe(202);
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 1);
  });

  it('does not count brackets, commas or escaped quotes inside strings', async () => {
    // Prepare: a property value that looks like a million nested arrays and elements, but is one string
    const body = referralWith(JSON.stringify(`\\"[{,${'[{,'.repeat(1_000_000)}`));

    // Act
    const response = await ingest(body);

    // Assess
    expect(response.statusCode).toBe(202);
  });

  it('gives the reconciler the same verdict: parseWebhook refuses the body before parsing it', () => {
    // Prepare
    const body = referralWith(`${'['.repeat(100)}${']'.repeat(100)}`);

    // Act
    const act = () => parseWebhook(body, CONFIG);

    // Assess
    expect(act).toThrow(expect.objectContaining({ statusCode: 413, code: 'body_too_complex' }));
  });
});

describe('jsonComplexityProblem', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('accepts nesting up to the bound and refuses one level more', () => {
    expect(jsonComplexityProblem(nested(JSON_BOUNDS.maxDepth))).toBeUndefined();
    expect(jsonComplexityProblem(nested(JSON_BOUNDS.maxDepth + 1))).toMatchObject({ code: 'body_too_complex' });
  });

  it('accepts elements up to the bound and refuses one more', () => {
    // [0,0,…,0] with n zeros is n elements: the array's n - 1 commas and the array itself.
    const array = (n: number) => `[${Array.from({ length: n }, () => '0').join(',')}]`;

    expect(jsonComplexityProblem(array(JSON_BOUNDS.maxElements))).toBeUndefined();
    expect(jsonComplexityProblem(array(JSON_BOUNDS.maxElements + 1))).toMatchObject({ code: 'body_too_complex' });
  });

  it('leaves malformed JSON to the parser', () => {
    expect(jsonComplexityProblem(']]]"unterminated')).toBeUndefined();
  });
});
