import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ReferralCodeIssuer } from '../lib/adapters/dynamodb/referral-code-issuer';
import { documentClient } from '../lib/infra/aws-clients';
import { loadReferralCodesConfig, referralLink, type ReferralCodesConfig } from '../lib/infra/config-referral-codes';
import { RejectedError } from '../lib/domain/errors';
import { issueReferralCode } from '../lib/domain/referral-codes';
import { isAuthorisedBearer } from '../lib/inbound/auth';
import { parseCodeRequest } from '../lib/inbound/referral-code-request';
import { maskCode, maskEmail } from '../lib/infra/mask';
import { count, misconfiguredReason, observedHttpHandler, scopedLogger } from '../lib/infra/observability';
import { APP_SECRET_KEYS, loadEnv } from '../lib/infra/secrets';
import { errorResponse, jsonResponse } from '../lib/inbound/response';

export interface ReferralCodesDeps {
  ddb: DynamoDBDocumentClient;
  config: () => Promise<ReferralCodesConfig>;
}

// A code is the referrer's own: no cache on the way may keep it.
const NO_STORE = { 'cache-control': 'no-store' };
const error = (statusCode: number, code: string, message: string, headers?: Record<string, string>) =>
  errorResponse(statusCode, code, message, { ...NO_STORE, ...headers });

/**
 * The app backend asks for its referrer's code: `POST /referral-codes` with `{"email"}` (and the
 * referrer's PostHog `distinct_id`), `Authorization: Bearer <APP_API_KEY>`. Answers the one code
 * that person has, making it on their first request (lib/domain/referral-codes.ts).
 */
export function makeReferralCodesHandler(deps: ReferralCodesDeps) {
  return observedHttpHandler((event: APIGatewayProxyEventV2) => respond(event, deps));
}

async function respond(event: APIGatewayProxyEventV2, deps: ReferralCodesDeps): Promise<APIGatewayProxyStructuredResultV2> {
  const log = scopedLogger({ requestId: event.requestContext?.requestId });
  let config: ReferralCodesConfig;
  try {
    config = await deps.config();
  } catch (cause) {
    log.error('referral codes are misconfigured', { reason: misconfiguredReason(cause) });
    return error(503, 'not_configured', 'the service is not configured yet; see the README');
  }
  const authorization = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
  // Both compared, each in constant time, so the answer's timing says nothing about which one matched.
  const current = isAuthorisedBearer(authorization, config.appApiKey);
  const previous = config.previousAppApiKey !== undefined && isAuthorisedBearer(authorization, config.previousAppApiKey);
  if (!current && !previous) {
    count('ReferralCodeUnauthorised');
    log.warn('referral code refused: missing or wrong bearer token', { code: 'unauthorized' });
    return error(401, 'unauthorized', 'missing or wrong Authorization: Bearer token', { 'www-authenticate': 'Bearer' });
  }
  try {
    const owner = parseCodeRequest(Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8').toString('utf8'));
    const code = await issueReferralCode(owner, new ReferralCodeIssuer(deps.ddb, config.tableName));
    count('ReferralCodeAnswered');
    // Who still sends the key being rotated out: the rotation's last step waits for this to stop.
    if (!current) count('ReferralCodePreviousKeyUsed');
    log.info('referral code answered', { referrer: maskEmail(owner.email), code: maskCode(code), ...(current ? {} : { key: 'previous' }) });
    return jsonResponse(200, { code, link: referralLink(config.referralLink, code) }, NO_STORE);
  } catch (cause) {
    if (cause instanceof RejectedError) {
      log.warn('referral code request rejected', { code: cause.code });
      return error(cause.statusCode, cause.code, cause.message);
    }
    // Names only: a message could quote the email.
    log.error('referral code could not be stored', { error: cause instanceof Error ? cause.name : typeof cause });
    return error(503, 'store_unavailable', 'the code could not be stored; please retry');
  }
}

export const handler = makeReferralCodesHandler({
  ddb: documentClient(),
  config: async () => loadReferralCodesConfig(await loadEnv(process.env, undefined, APP_SECRET_KEYS)),
});
