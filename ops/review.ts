/** `review list|approve|reject` and `revoke`: the operator's lifecycle commands (lib/domain/lifecycle/), on a target. */
import { loadLifecycleConfig, loadShopifyConfig, type Env } from '../lib/infra/config';
import { withDefault } from '../lib/infra/settings';
import { queueSender } from '../lib/adapters/sqs/queue';
import { LifecycleLedger, type LifecycleRecord } from '../lib/adapters/dynamodb/lifecycle-ledger';
import { approveReferral, rejectReferral, type ReviewDeps, type ReviewOutcome } from '../lib/domain/lifecycle/review';
import { revokeReferral, type RevokeOutcome } from '../lib/domain/lifecycle/revoke';
import { maskEmail } from '../lib/infra/mask';
import { PostHogCapture } from '../lib/adapters/posthog-capture';
import { loadEnv } from '../lib/infra/secrets';
import { ShopifyClient } from '../lib/adapters/shopify/client';
import { tokenProviderFor } from '../lib/adapters/shopify/auth';
import { setOnly, stageParams } from './stage-params';
import type { Target } from './target';

export interface ReviewItem {
  eventId: string;
  reasons: string[];
  since?: string;
  referrer: string;
  redeemer: string;
}

/**
 * Credentials for the commands that call out (revoke → Shopify; reject/revoke → PostHog): in AWS
 * from the stage's params and secret (`referral-rewards/<stage>`, as the worker reads them), locally from this
 * shell's env and the sandbox shop `npm start` runs.
 */
export async function opsEnv(target: Target, stage: string | undefined): Promise<Env> {
  if (target.emulated || !stage) return { ...process.env, ...target.env, SECRET_ID: undefined };
  // A stage's settings (SHOPIFY_STORE_DOMAIN, REWARD_TYPE, …) are its serverless.yml params, as deployed.
  const env: Env = { ...stageParams(stage), ...setOnly(process.env), ...target.env };
  return loadEnv({ ...env, SECRET_ID: `referral-rewards/${stage}` });
}

/** The worker's Shopify settings and auth (static token or the client credentials grant), read and checked the same way. */
function shopifyClient(env: Env): ShopifyClient {
  const shopify = loadShopifyConfig(env);
  return new ShopifyClient({ baseUrl: shopify.baseUrl, apiVersion: shopify.apiVersion, auth: tokenProviderFor(shopify.baseUrl, shopify.auth) });
}

function clients(target: Target, env: Env) {
  loadLifecycleConfig(env); // refuses a malformed lifecycle setting before anything is written
  const posthogKey = env.POSTHOG_API_KEY?.trim();
  // A shop is configured at all (loadShopifyConfig then reads and checks it as the worker does).
  const shopConfigured = Boolean(env.SHOPIFY_BASE_URL?.trim() || env.SHOPIFY_STORE_DOMAIN?.trim());
  return {
    ledger: new LifecycleLedger(target.ddb, target.tableName),
    posthog: posthogKey ? new PostHogCapture({ host: withDefault(env, 'POSTHOG_HOST'), apiKey: posthogKey }) : undefined,
    shopify: shopConfigured ? shopifyClient(env) : undefined,
    rewardType: env.REWARD_TYPE?.trim() || 'gift_card',
    rewardAmount: withDefault(env, 'REWARD_AMOUNT'),
  };
}

export async function listReview(target: Target): Promise<ReviewItem[]> {
  const waiting = await new LifecycleLedger(target.ddb, target.tableName).waiting('review');
  return waiting.map((record: LifecycleRecord) => ({
    eventId: record.eventId,
    reasons: record.reviewReasons ?? [],
    since: record.reviewSince,
    referrer: maskEmail(record.referrerEmail),
    redeemer: maskEmail(record.redeemerEmail),
  }));
}

export function formatReviewList(items: ReviewItem[]): string {
  if (items.length === 0) return 'No referral is waiting in review.';
  const lines = [`${items.length} referral(s) waiting in review, oldest first:`];
  for (const item of items) lines.push(`  ${item.eventId}  since ${item.since ?? '-'}  ${item.reasons.join(', ')}  ${item.referrer} → ${item.redeemer}`);
  lines.push('  → `review approve <eventId>` to pay, `review reject <eventId> --reason TEXT` to refuse (docs/OPERATIONS.md)');
  return lines.join('\n');
}

export async function decide(target: Target, env: Env, decision: 'approve' | 'reject', eventId: string, note?: string): Promise<ReviewOutcome> {
  const c = clients(target, env);
  const deps: ReviewDeps = { ledger: c.ledger, enqueue: queueSender(target.sqs, target.queueUrl), posthog: c.posthog, rewardType: c.rewardType };
  return decision === 'approve' ? approveReferral(deps, eventId, note) : rejectReferral(deps, eventId, note);
}

export function formatDecision(outcome: ReviewOutcome): string {
  if (outcome.result === 'revoked') return `Referral ${outcome.eventId}: approved, but revoked meanwhile (before payout): nothing will be paid; status ${outcome.status}`;
  const already = outcome.result.startsWith('already-');
  const what = outcome.result.replace('already-', '');
  const later = outcome.releaseAt !== undefined && outcome.releaseAt > Date.now() ? `held until ${new Date(outcome.releaseAt).toISOString()} (its acceptance plus REWARD_HOLD), then ` : '';
  return `Referral ${outcome.eventId}: ${what}${already ? ' (already, nothing changed)' : ''}; status ${outcome.status}` +
    (what === 'approved' ? `\n  → ${later}queued for the worker, which pays it once; \`status <eventId>\` to follow it` : '');
}

export async function revoke(target: Target, env: Env, eventId: string, reason: string): Promise<RevokeOutcome> {
  const c = clients(target, env);
  return revokeReferral({ ledger: c.ledger, shopify: c.shopify, posthog: c.posthog, rewardType: c.rewardType, rewardAmount: c.rewardAmount }, eventId, reason);
}

export function formatRevoke(outcome: RevokeOutcome): string {
  const head =
    outcome.result === 'cancelled'
      ? 'cancelled before payout: nothing was issued'
      : outcome.result === 'revoked'
        ? 'revoked: both rewards deactivated in Shopify'
        : 'already revoked (nothing changed)';
  const balances = Object.entries(outcome.balanceLeft).map(([role, balance]) => `${role} ${balance}`);
  return `Referral ${outcome.eventId}: ${head}${balances.length ? `\n  balance left when deactivated: ${balances.join(', ')}` : ''}`;
}
