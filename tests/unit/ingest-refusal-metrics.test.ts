/**
 * The metrics the webhook alarms watch (serverless.yml, docs/OPERATIONS.md "Alarms"): a refusal is
 * counted there only when the request proved it holds one of our credentials, so no anonymous
 * caller can hold an alarm in ALARM (CloudWatch notifies on state changes only) and hide a real
 * half-done rotation. Read from the EMF lines ingest prints, as CloudWatch reads them.
 */
import { FUNCTION_NAME, emittedMetrics } from '../support/emf';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import type { IngestConfig } from '../../lib/infra/config';
import { signWebhook } from '../../lib/inbound/signature';
import { makeIngestHandler } from '../../functions/ingest';
import { httpApiEvent } from '../../local/apigw';
import { loadDefaultBody } from '../support/fixtures';

const BEARER = 'test-webhook-secret-0123456789';
const SIGNING_SECRET = `whsec_${Buffer.from('refusal-metrics-test-key-32-byte').toString('base64')}`;
const NOW_MS = 1_763_633_730_000;
const CONFIG: IngestConfig = {
  webhookSecret: BEARER,
  referralEvent: 'referral redeemed',
  referrerEmailProperty: 'referrer_email',
  redeemerEmailProperty: 'redeemer_email',
  queueUrl: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
};
const SIGNED: IngestConfig = { ...CONFIG, webhookSigningSecret: SIGNING_SECRET };
const BODY = loadDefaultBody();
const ALARM_METRICS = ['WebhookAuthMismatch', 'WebhookRejectedAuthenticated'];

const sqsMock = mockClient(SQSClient);
beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'message-1' });
});

function signatureHeaders(body: string, secret = SIGNING_SECRET): Record<string, string> {
  const id = 'msg_refusal_metrics';
  const timestamp = String(NOW_MS / 1000);
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signWebhook({ secret, id, timestamp, body }) };
}

/** The alarm metrics ingest printed while answering one request, and the answer's status. */
async function answer(config: IngestConfig, body: string, headers: Record<string, string>) {
  const handler = makeIngestHandler({ sqs: new SQSClient({}), config: async () => config, now: () => NOW_MS });
  let status = 0;
  const metrics = await emittedMetrics(async () => {
    status = (await handler(httpApiEvent({ body, headers: { 'content-type': 'application/json', ...headers } }))).statusCode ?? 0;
  });
  return { status, alarmMetrics: metrics.filter(({ name }) => ALARM_METRICS.includes(name)) };
}

const counted = (name: string) => [
  { namespace: 'ReferralRewards', name, dimensions: { service: 'referral-rewards', function: FUNCTION_NAME }, value: 1 },
];

describe('ingest: refusals an anonymous caller can cause count nowhere the alarms look', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong bearer token', { authorization: 'Bearer guessed' }],
    [
      'a wrong bearer token and made-up signature headers',
      { authorization: 'Bearer guessed', ...signatureHeaders(BODY, `whsec_${Buffer.from('not-our-key').toString('base64')}`) },
    ],
  ])('a request with %s is refused 401 and counted in no alarm metric', async (_what, headers) => {
    // Act
    const { status, alarmMetrics } = await answer(SIGNED, BODY, headers);

    // Assess
    expect(status).toBe(401);
    expect(alarmMetrics).toEqual([]);
  });

  it('an anonymous request with an unreadable body is refused 401, not counted as a rejected body', async () => {
    const { status, alarmMetrics } = await answer(CONFIG, 'not json', { authorization: 'Bearer guessed' });

    expect(status).toBe(401);
    expect(alarmMetrics).toEqual([]);
  });
});

describe("ingest: refusals of PostHog's own deliveries are counted for the alarms", () => {
  it('counts WebhookAuthMismatch for a validly signed request whose bearer token is wrong (the bearer half rotated)', async () => {
    // Act
    const { status, alarmMetrics } = await answer(SIGNED, BODY, { authorization: 'Bearer the-old-secret', ...signatureHeaders(BODY) });

    // Assess
    expect(status).toBe(401);
    expect(alarmMetrics).toEqual(counted('WebhookAuthMismatch'));
  });

  it('counts WebhookAuthMismatch for the right bearer token with a wrong signature (the signing secret half rotated)', async () => {
    // Prepare
    const oldKey = `whsec_${Buffer.from('the-previous-signing-key-32-byte').toString('base64')}`;

    // Act
    const { status, alarmMetrics } = await answer(SIGNED, BODY, { authorization: `Bearer ${BEARER}`, ...signatureHeaders(BODY, oldKey) });

    // Assess
    expect(status).toBe(401);
    expect(alarmMetrics).toEqual(counted('WebhookAuthMismatch'));
  });

  it.each([
    ['400', 'not json'],
    ['422', BODY.replace('"referrer_email": "Referrer.Person@Example.com"', '"referrer_email": "not an email"')],
    ['413', `${BODY.trim().slice(0, -1)},"extra":${'['.repeat(100)}${']'.repeat(100)}}`],
  ])('counts WebhookRejectedAuthenticated for an authenticated body refused %s', async (expected, body) => {
    // Act
    const { status, alarmMetrics } = await answer(CONFIG, body, { authorization: `Bearer ${BEARER}` });

    // Assess
    expect(String(status)).toBe(expected);
    expect(alarmMetrics).toEqual(counted('WebhookRejectedAuthenticated'));
  });

  it('counts nothing for a referral it queues', async () => {
    const { status, alarmMetrics } = await answer(SIGNED, BODY, { authorization: `Bearer ${BEARER}`, ...signatureHeaders(BODY) });

    expect(status).toBe(202);
    expect(alarmMetrics).toEqual([]);
  });
});
