/** `review list|approve|reject` and `revoke`: the operator's lifecycle commands (lib/domain/lifecycle/), on a target. */
import { loadLifecycleConfig, loadShopifyConfig, SECRET_KEYS, type Env } from '../lib/infra/config';
import { withDefault } from '../lib/infra/settings';
import { queueSender } from '../lib/adapters/sqs/queue';
import { Ledger, type LifecycleRecord } from '../lib/adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../lib/adapters/dynamodb/lifecycle-index';
import { reviewSince } from '../lib/domain/lifecycle/record';
import { approveReferral, rejectReferral, type ReviewDeps, type ReviewOutcome } from '../lib/domain/lifecycle/review';
import { revokeReferral, type RevokeOutcome, type RewardDeactivator } from '../lib/domain/lifecycle/revoke';
import { maskEmail } from '../lib/infra/mask';
import { PostHogCapture } from '../lib/adapters/posthog-capture';
import { loadEnv } from '../lib/infra/secrets';
import { deactivateReward } from '../lib/adapters/shopify/deactivation';
import { ShopifyTransport } from '../lib/adapters/shopify/transport';
import { tokenProviderFor } from '../lib/adapters/shopify/auth';
import { stageEnv } from './stage-params';
import type { Target } from './target';

export interface ReviewItem {
  eventId: string;
  reasons: string[];
  since?: string;
  referrer: string;
  redeemer: string;
  /**
   * For a shared device or IP: both persons' pages in PostHog, to compare their events. They name
   * the people (a distinct id is often the email), so they are shown to the operator, never logged.
   */
  posthog?: { referrer: string; redeemer: string };
}

/** The reasons the shared-signal guard gives (lib/domain/lifecycle/guards.ts). */
const SHARED_SIGNAL_REASONS = new Set(['shared_device', 'shared_ip']);

/**
 * A person's page by distinct id, as PostHog's app builds it (PostHog/posthog
 * `products/persons/manifest.tsx`, personByDistinctId: `/person/<encoded id>`, under the project).
 * The referrer by email: the ledger keeps no distinct id for them, and apps often identify with it.
 */
export function posthogPersonUrl(appHost: string, projectId: string, distinctId: string): string {
  return `${appHost.replace(/\/+$/, '')}/project/${encodeURIComponent(projectId)}/person/${encodeURIComponent(distinctId)}`;
}

/**
 * The settings a lifecycle command runs with. For a stage: its serverless.yml params (vendor URLs
 * only from there, https only: ops/stage-params.ts), and its worker secret
 * (`referral-rewards/<stage>/worker`) read only by the one command that calls Shopify, revoking a
 * paid referral. Locally: this shell's env and the sandbox shop `npm start` runs (.local/stack.json).
 */
export interface OpsSettings {
  /** No secret in it (a stage) or everything the local stack has. */
  env: Env;
  /** `env` with the worker's vendor credentials: reads the stage's worker secret. */
  withWorkerSecret(): Promise<Env>;
}

export function opsSettings(target: Target, stage: string | undefined, shell: Env = process.env): OpsSettings {
  if (target.emulated || !stage) {
    const env: Env = { ...shell, ...target.env, SECRET_ID: undefined };
    return { env, withWorkerSecret: async () => env };
  }
  const env = stageEnv(stage, shell);
  return { env, withWorkerSecret: () => loadEnv({ ...env, SECRET_ID: workerSecretName(stage) }, target.secrets, SECRET_KEYS) };
}

/** The worker's secret: not a prefix of the webhook's or the reconciler's, so a policy on one name grants only it. */
export const workerSecretName = (stage: string): string => `referral-rewards/${stage}/worker`;

/** The worker's Shopify settings and auth (static token or the client credentials grant), read and checked the same way. */
function shopifyClient(env: Env): RewardDeactivator {
  const shopify = loadShopifyConfig(env);
  const transport = new ShopifyTransport({
    baseUrl: shopify.baseUrl,
    apiVersion: shopify.apiVersion,
    auth: tokenProviderFor(shopify.baseUrl, shopify.auth),
  });
  return { deactivateReward: (id) => deactivateReward(transport, id) };
}

function clients(target: Target, env: Env, needsShopify: boolean) {
  loadLifecycleConfig(env); // refuses a malformed lifecycle setting before anything is written
  // The project key (phc_) is write-only and public by design (posthog.com/docs/api: the public,
  // POST-only endpoints): a command that reads no secret captures with the one in this shell, if any.
  const posthogKey = env.POSTHOG_API_KEY?.trim();
  return {
    ledger: new Ledger(target.ddb, target.tableName),
    posthog: posthogKey ? new PostHogCapture({ host: withDefault(env, 'POSTHOG_HOST'), apiKey: posthogKey }) : undefined,
    shopify: needsShopify ? shopifyClient(env) : undefined,
    rewardAmount: withDefault(env, 'REWARD_AMOUNT'),
  };
}

/** For the operator: an outcome PostHog did not get, and how to send it (the capture is idempotent). */
export function captureNote(env: Env): string | undefined {
  return env.POSTHOG_API_KEY?.trim()
    ? undefined
    : 'PostHog: outcome not captured by this run (no POSTHOG_API_KEY here; set the project key in this shell and run the command again to capture it)';
}

export async function listReview(target: Target, posthog?: { appHost: string; projectId: string }): Promise<ReviewItem[]> {
  const waiting = await new LifecycleIndexReader(target.ddb, target.tableName).waiting('review');
  return waiting.map((record: LifecycleRecord) => {
    const reasons = record.reviewReasons ?? [];
    const shared = posthog && reasons.some((reason) => SHARED_SIGNAL_REASONS.has(reason));
    return {
      eventId: record.eventId,
      reasons,
      since: reviewSince(record),
      referrer: maskEmail(record.referrerEmail),
      redeemer: maskEmail(record.redeemerEmail),
      ...(shared
        ? {
            posthog: {
              referrer: posthogPersonUrl(posthog.appHost, posthog.projectId, record.referrerEmail),
              redeemer: posthogPersonUrl(posthog.appHost, posthog.projectId, record.distinctId || record.redeemerEmail),
            },
          }
        : {}),
    };
  });
}

export function formatReviewList(items: ReviewItem[]): string {
  if (items.length === 0) return 'No referral is waiting in review.';
  const lines = [`${items.length} referral(s) waiting in review, oldest first:`];
  for (const item of items) {
    lines.push(`  ${item.eventId}  since ${item.since ?? '-'}  ${item.reasons.join(', ')}  ${item.referrer} → ${item.redeemer}`);
    if (item.posthog) lines.push(`      PostHog: referrer ${item.posthog.referrer}  redeemer ${item.posthog.redeemer}`);
  }
  lines.push('  → `review approve <eventId>` to pay, `review reject <eventId> --reason TEXT` to refuse (docs/OPERATIONS.md)');
  return lines.join('\n');
}

export async function decide(
  target: Target,
  settings: OpsSettings,
  decision: 'approve' | 'reject',
  eventId: string,
  note?: string,
): Promise<ReviewOutcome> {
  const c = clients(target, settings.env, false);
  const deps: ReviewDeps = {
    ledger: c.ledger,
    enqueue: queueSender(target.sqs, target.queueUrl),
    posthog: c.posthog,
  };
  return decision === 'approve' ? approveReferral(deps, eventId, note) : rejectReferral(deps, eventId, note);
}

export function formatDecision(outcome: ReviewOutcome): string {
  if (outcome.result === 'revoked')
    return `Referral ${outcome.eventId}: approved, but revoked meanwhile (before payout): nothing will be paid; status ${outcome.status}`;
  const already = outcome.result.startsWith('already-');
  const what = outcome.result.replace('already-', '');
  const later =
    outcome.releaseAt !== undefined && outcome.releaseAt > Date.now()
      ? `held until ${new Date(outcome.releaseAt).toISOString()} (its acceptance plus REWARD_HOLD), then `
      : '';
  return (
    `Referral ${outcome.eventId}: ${what}${already ? ' (already, nothing changed)' : ''}; status ${outcome.status}` +
    (what === 'approved' ? `\n  → ${later}queued for the worker, which pays it once; \`status <eventId>\` to follow it` : '')
  );
}

/**
 * Only a paid referral (COMPLETED, possibly half deactivated) needs Shopify, so only then is the
 * worker secret read. One paid between this look and the revoke is refused by the domain ("no
 * Shopify credentials") and revoked by the next run.
 */
export async function revoke(
  target: Target,
  settings: OpsSettings,
  eventId: string,
  reason: string,
): Promise<{ outcome: RevokeOutcome; env: Env }> {
  const current = await new Ledger(target.ddb, target.tableName).get(eventId);
  const needsShopify = current?.status === 'COMPLETED';
  const env = needsShopify ? await settings.withWorkerSecret() : settings.env;
  const c = clients(target, env, needsShopify);
  const outcome = await revokeReferral(
    { ledger: c.ledger, shopify: c.shopify, posthog: c.posthog, rewardAmount: c.rewardAmount },
    eventId,
    reason,
  );
  return { outcome, env };
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
