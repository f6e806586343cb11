import { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { isAuthorisedBearer } from '../lib/auth';
import { loadIngestConfig, MAX_BODY_BYTES, type IngestConfig } from '../lib/config';
import { PermanentError, RejectedError } from '../lib/errors';
import { flushMetrics, logger, metrics, MetricUnit } from '../lib/observability';
import { parseWebhook } from '../lib/posthog';
import { enqueueReferral } from '../lib/queue';
import { loadEnv } from '../lib/secrets';

export interface IngestDeps {
  sqs: SQSClient;
  config: () => Promise<IngestConfig>;
}

const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});
const error = (statusCode: number, code: string, message: string, headers?: Record<string, string>) =>
  json(statusCode, { error: { code, message } }, headers);

/** PostHog → SQS. Answers 202 only once the referral is durably queued; never does the slow work itself. */
export function makeIngestHandler(deps: IngestDeps) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    try {
      return await respond(event, deps);
    } finally {
      flushMetrics();
    }
  };
}

async function respond(event: APIGatewayProxyEventV2, deps: IngestDeps): Promise<APIGatewayProxyStructuredResultV2> {
  let config: IngestConfig;
  try {
    config = await deps.config();
  } catch (cause) {
    // A 5xx keeps PostHog retrying while the operator fixes the secret; nothing is lost meanwhile.
    logger.error('ingest is misconfigured', { reason: cause instanceof PermanentError ? cause.message : String(cause) });
    return error(503, 'not_configured', 'the service is not configured yet; see the README');
  }

  const headers = lowerCaseKeys(event.headers);
  if (!isAuthorisedBearer(headers.authorization, config.webhookSecret)) {
    metrics.addMetric('WebhookUnauthorised', MetricUnit.Count, 1);
    return error(401, 'unauthorized', 'missing or wrong Authorization: Bearer token', { 'www-authenticate': 'Bearer' });
  }

  const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
  if (body.length > MAX_BODY_BYTES) {
    return error(413, 'body_too_large', `body is larger than ${MAX_BODY_BYTES} bytes`);
  }

  try {
    const parsed = parseWebhook(body.toString('utf8'), config);
    if (parsed.kind === 'ignored') {
      metrics.addMetric('WebhookIgnored', MetricUnit.Count, 1);
      return json(200, { status: 'ignored', reason: `event is not "${config.referralEvent}"`, eventId: parsed.eventId });
    }
    const { referral } = parsed;
    await enqueueReferral(deps.sqs, config.queueUrl, referral);
    metrics.addMetric('ReferralQueued', MetricUnit.Count, 1);
    logger.info('referral queued', { eventId: referral.eventId });
    return json(202, { status: 'queued', eventId: referral.eventId });
  } catch (cause) {
    if (cause instanceof RejectedError) {
      metrics.addMetric('WebhookRejected', MetricUnit.Count, 1);
      logger.warn('webhook rejected', { code: cause.code });
      return error(cause.statusCode, cause.code, cause.message);
    }
    logger.error('queue unavailable', { error: (cause as Error).message });
    return error(503, 'queue_unavailable', 'the referral could not be queued; please retry');
  }
}

function lowerCaseKeys(headers: Record<string, string | undefined> | undefined): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(headers ?? {})) out[key.toLowerCase()] = value;
  return out;
}

// Created once per container: the client keeps its connections warm between invocations.
const sqs = new SQSClient({ requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 } });

export const handler = makeIngestHandler({ sqs, config: async () => loadIngestConfig(await loadEnv()) });
