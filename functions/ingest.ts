import { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { isAuthorisedBearer } from '../lib/inbound/auth';
import { loadIngestConfig, MAX_BODY_BYTES, type IngestConfig } from '../lib/infra/config';
import { RejectedError, RetryableError } from '../lib/domain/errors';
import { count, countForFunction, misconfiguredReason, observedHttpHandler, scopedLogger } from '../lib/infra/observability';
import { parseWebhook } from '../lib/inbound/posthog-webhook';
import { BODY_TOO_COMPLEX } from '../lib/inbound/json-bounds';
import { enqueueReferral } from '../lib/adapters/sqs/queue';
import { EVENT_ID_PATTERN } from '../lib/domain/referral';
import { loadEnv, WEBHOOK_SECRET_KEYS } from '../lib/infra/secrets';
import { verifyWebhookSignature } from '../lib/inbound/signature';
import { errorResponse, jsonResponse } from '../lib/inbound/response';

export interface IngestDeps {
  sqs: SQSClient;
  config: () => Promise<IngestConfig>;
  /** Epoch ms that webhook-timestamp is checked against; Date.now by default. */
  now?: () => number;
}

export type IngestHandler = (event: APIGatewayProxyEventV2, context?: Context) => Promise<APIGatewayProxyStructuredResultV2>;

/** PostHog → SQS. Answers 202 only once the referral is durably queued; never does the slow work itself. */
export function makeIngestHandler(deps: IngestDeps): IngestHandler {
  return observedHttpHandler((event: APIGatewayProxyEventV2) => respond(event, deps));
}

async function respond(event: APIGatewayProxyEventV2, deps: IngestDeps): Promise<APIGatewayProxyStructuredResultV2> {
  const requestId = event.requestContext?.requestId;
  let log = scopedLogger({ requestId });

  let config: IngestConfig;
  try {
    config = await deps.config();
  } catch (cause) {
    // 503: PostHog retries it (3 attempts within seconds, then drops the event); the reconciler recovers what is dropped.
    log.error('ingest is misconfigured', { reason: misconfiguredReason(cause) });
    return errorResponse(503, 'not_configured', 'the service is not configured yet; see the README');
  }

  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
  const bearerOk = isAuthorisedBearer(headers.authorization, config.webhookSecret);
  const unauthorised = (validSignature: boolean) => {
    count('WebhookUnauthorised');
    if (validSignature) countForFunction('WebhookAuthMismatch', 1, 'ingest');
    // Never the presented value: a near-miss token is most of the secret.
    log.warn('webhook refused: missing or wrong bearer token', { code: 'unauthorized', ...(validSignature ? { validSignature } : {}) });
    return errorResponse(401, 'unauthorized', 'missing or wrong Authorization: Bearer token', { 'www-authenticate': 'Bearer' });
  };
  // Both credentials are judged before either refuses: a request that proves one of them and
  // fails the other is PostHog's own delivery refused by a half-done rotation, the one 401 a
  // stranger cannot cause. It and a 4xx after both passed are counted in this function's own
  // series (WebhookAuthMismatch, WebhookRejectedAuthenticated): the webhook alarms watch these, not
  // the access log's 401/4xx counts, which any anonymous caller can keep above a threshold
  // (docs/OPERATIONS.md, "Alarms"). A wrong bearer without a signature to check is refused before
  // the body is even decoded.
  if (!bearerOk && !(config.webhookSigningSecret && headers['webhook-signature'] !== undefined)) return unauthorised(false);

  // The bytes as PostHog sent them: the signature covers these, not a re-encoding of them.
  const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
  // An unusable signing secret never gets here: loadIngestConfig refuses it (the one misconfigured path above).
  const signature = config.webhookSigningSecret
    ? verifyWebhookSignature({
        secret: config.webhookSigningSecret,
        id: headers['webhook-id'],
        timestamp: headers['webhook-timestamp'],
        signatureHeader: headers['webhook-signature'],
        body,
        now: (deps.now ?? Date.now)(),
      })
    : undefined;
  if (!bearerOk) return unauthorised(signature?.ok === true);
  if (signature && !signature.ok) {
    count('WebhookUnauthorised');
    countForFunction('WebhookAuthMismatch', 1, 'ingest');
    log.warn('webhook refused: signature check failed', { code: signature.code });
    return errorResponse(401, signature.code, signature.message);
  }

  const rejected = (statusCode: number, code: string, message: string, fields: { bytes?: number } = {}) => {
    count('WebhookRejected');
    countForFunction('WebhookRejectedAuthenticated', 1, 'ingest');
    log.warn('webhook rejected', { code, ...fields });
    return errorResponse(statusCode, code, message);
  };
  if (body.length > MAX_BODY_BYTES) {
    return rejected(413, 'body_too_large', `body is larger than ${MAX_BODY_BYTES} bytes`, { bytes: body.length });
  }

  const text = body.toString('utf8');
  try {
    const parsed = parseWebhook(text, config);
    if (parsed.kind === 'ignored') {
      log = scopedLogger({ requestId, eventId: parsed.eventId });
      count('WebhookIgnored');
      log.debug('webhook ignored: not the referral event');
      return jsonResponse(200, { status: 'ignored', reason: `event is not "${config.referralEvent}"`, eventId: parsed.eventId });
    }
    const queued = parsed.kind === 'person-event' ? parsed.event : parsed.referral;
    log = scopedLogger({ requestId, eventId: queued.eventId });
    await enqueueReferral(deps.sqs, config.queueUrl, queued);
    if (parsed.kind === 'person-event') {
      count('PersonEventQueued');
      log.info('person event queued', { role: parsed.event.role });
    } else {
      count('ReferralQueued');
      log.info('referral queued');
    }
    return jsonResponse(202, { status: 'queued', eventId: queued.eventId });
  } catch (cause) {
    if (cause instanceof RejectedError) {
      // The uuid, when the body has a readable one, ties this refusal to the PostHog event; a
      // body refused for what parsing it would cost is never parsed, not even for its uuid.
      log = scopedLogger({ requestId, eventId: cause.code === BODY_TOO_COMPLEX ? undefined : peekEventId(text) });
      return rejected(cause.statusCode, cause.code, cause.message);
    }
    // Names only: an unexpected error's message could quote the body (emails).
    const sqsError = cause instanceof RetryableError ? errorName(cause.cause) : undefined;
    log.error(cause instanceof RetryableError ? 'queue unavailable' : 'unexpected error while queueing', {
      error: cause instanceof RetryableError ? cause.message : errorName(cause),
      ...(sqsError ? { sqsError } : {}),
    });
    return errorResponse(503, 'queue_unavailable', 'the referral could not be queued; please retry');
  }
}

/** The event uuid of a body parseWebhook refused, if it has a well-formed one; never anything else from it. */
function peekEventId(text: string): string | undefined {
  try {
    const root: unknown = JSON.parse(text);
    if (root === null || typeof root !== 'object' || Array.isArray(root)) return undefined;
    const wrapped = (root as { event?: unknown }).event;
    const eventObject = wrapped !== null && typeof wrapped === 'object' ? wrapped : root;
    const id = (eventObject as { uuid?: unknown }).uuid;
    return typeof id === 'string' && EVENT_ID_PATTERN.test(id) ? id.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

function errorName(value: unknown): string | undefined {
  const name = (value as { name?: unknown } | null | undefined)?.name;
  return typeof name === 'string' ? name : value === undefined ? undefined : typeof value;
}

export const handler = makeIngestHandler({
  // Created once per container: the client keeps its connections warm between invocations.
  sqs: new SQSClient({ requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 } }),
  config: async () => loadIngestConfig(await loadEnv(process.env, undefined, WEBHOOK_SECRET_KEYS)),
});
