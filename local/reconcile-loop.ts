/**
 * `npm start`'s reconciler: the deployed handler (functions/reconcile.ts) every RECONCILE_INTERVAL,
 * as EventBridge runs it on AWS, against the sandbox PostHog's Query API unless a real one is
 * configured. Off unless RECONCILE_FROM is set (README, "Watch a lost referral being recovered").
 */
import { randomUUID } from 'node:crypto';
import { loadReconcilerConfig, RECONCILER_DEFAULTS, type Env } from '../lib/infra/config';
import { formatDuration } from '../lib/infra/duration';
import { every } from './loops';
import { startFakePostHog, type FakePostHog } from './sandbox/posthog';
import { signEventProperties } from './vouch';

export interface LocalReconciler {
  enabled: boolean;
  /** For the banner. */
  description: string;
  /** For stack.json: what `npm run ops -- reconcile --local` needs (sandbox only). */
  stackSettings?: Record<string, string>;
  /** The sandbox, when it is the one in use: where to "capture" a referral the webhook never sees. */
  posthog?: FakePostHog;
  /** Starts the timer; `run` is the handler, imported once the environment is final. */
  start(run: () => Promise<unknown>): void;
  stop(): Promise<void>;
}

type Say = (line: string) => void;

const CATCH_UP_SETTINGS = ['QUALIFY_EVENT', 'QUALIFY_WITHIN', 'QUALIFY_WHERE', 'REVOKE_EVENT'] as const;

/** Sets up the sandbox PostHog (when needed) and the reconciler's env; call before the handlers are imported. */
export async function prepareLocalReconciler(env: Env, say: Say): Promise<LocalReconciler> {
  const off = (description: string): LocalReconciler => ({
    enabled: false,
    description,
    start: () => undefined,
    stop: async () => undefined,
  });
  if (!env.RECONCILE_FROM?.trim()) return off('off (set RECONCILE_FROM to run it locally; README, "Reconciler")');

  let posthog: FakePostHog | undefined;
  if (!(env.POSTHOG_PERSONAL_API_KEY?.trim() || env.POSTHOG_PROJECT_ID?.trim() || env.POSTHOG_APP_HOST?.trim())) {
    posthog = await startFakePostHog({ port: 0 });
    Object.assign(env, posthog.queryEnv);
  }
  // Half-set PostHog settings would fail every run; say so at start instead.
  const config = loadReconcilerConfig({ ...env, TABLE_NAME: env.TABLE_NAME || 'x', QUEUE_URL: env.QUEUE_URL || 'x' });
  if (!config.enabled) return off('off');
  const intervalMs = config.intervalMs;

  let stopLoop: (() => Promise<void>) | undefined;
  return {
    enabled: true,
    description:
      `every ${formatDuration(intervalMs)} from ${new Date(config.from).toISOString()}, events older than ${formatDuration(config.minAgeMs)}, ` +
      (posthog ? `sandbox Query API at ${posthog.url}` : `PostHog ${config.posthog.appHost} project ${config.posthog.projectId}`),
    stackSettings: posthog
      ? {
          ...posthog.queryEnv,
          RECONCILE_FROM: env.RECONCILE_FROM!.trim(),
          RECONCILE_MIN_AGE: env.RECONCILE_MIN_AGE?.trim() || RECONCILER_DEFAULTS.RECONCILE_MIN_AGE,
          // `ops reconcile --local` catches up as the stack's own runs do.
          ...Object.fromEntries(CATCH_UP_SETTINGS.filter((name) => env[name]?.trim()).map((name) => [name, env[name]!.trim()])),
        }
      : undefined,
    posthog,
    start(run) {
      const once = () =>
        run()
          .then((result) => report(result, say))
          .catch((error: unknown) => say(`⚠️  reconcile run failed: ${(error as Error)?.message ?? String(error)}`));
      stopLoop = every(intervalMs, once, Math.min(intervalMs, 2_000));
    },
    async stop() {
      await stopLoop?.();
      await posthog?.close();
    },
  };
}

function report(result: unknown, say: Say): void {
  const r = result as {
    status?: string;
    seen?: number;
    missing?: unknown[];
    queued?: number;
    unreconcilable?: unknown[];
    personEvents?: { seen: number; missing: number; queued: number; unreconcilable: number };
  };
  if (r?.status !== 'done') return;
  const caught = r.personEvents;
  if (caught && (caught.missing > 0 || caught.unreconcilable > 0)) {
    say(
      `🔎 reconcile catch-up: PostHog has ${caught.seen} qualifying/refund event(s) of referrals' redeemers; ` +
        `${caught.missing} not handled yet, ${caught.queued} queued for the worker` +
        (caught.unreconcilable > 0 ? `; ${caught.unreconcilable} unreconcilable (see the WARN lines)` : ''),
    );
  }
  if ((r.missing?.length ?? 0) === 0 && (r.unreconcilable?.length ?? 0) === 0) return;
  say(
    `🔎 reconcile: PostHog has ${r.seen} referral(s); ${r.missing?.length} missing from the ledger, ${r.queued} queued for the worker` +
      ((r.unreconcilable?.length ?? 0) > 0 ? `; ${r.unreconcilable?.length} unreconcilable (see the WARN lines)` : ''),
  );
}

/**
 * A `curl` that captures a referral into the sandbox PostHog, as the app would, without any
 * webhook: the reconciler's job. Signed with `signingKey`, as the app's backend signs it.
 */
export function lostReferralCurl(posthog: FakePostHog, signingKey: string): string {
  const uuid = randomUUID();
  const redeemer = `lost-${uuid.slice(0, 8)}@example.com`;
  const properties = { referrer_email: `referrer-${uuid.slice(0, 8)}@example.com`, redeemer_email: redeemer };
  const body = {
    api_key: posthog.apiKey,
    event: 'referral redeemed',
    distinct_id: redeemer,
    uuid,
    properties: signEventProperties('referral redeemed', properties, signingKey),
  };
  return `curl -s -X POST ${posthog.url}/i/v0/e/ -H 'Content-Type: application/json' -d '${JSON.stringify(body)}'`;
}

/**
 * What PostHog has, locally: every event PostHog sends to the destination is one it stored first,
 * so each webhook body the gateway receives is also recorded in the sandbox PostHog (its event
 * and, from the default body's `person`, the person's id and email). The catch-up's query asks
 * for a referral's redeemer by that referral event, so it must be there, as in PostHog. A uuid
 * already recorded (a `--repeat`) is not recorded again.
 */
export function recordDelivered(posthog: FakePostHog, rawBody: string): void {
  let body: { event?: Record<string, unknown>; person?: { id?: unknown; properties?: { email?: unknown } } };
  try {
    body = JSON.parse(rawBody) as typeof body;
  } catch {
    return;
  }
  const event = body?.event;
  if (!event || typeof event.event !== 'string' || typeof event.distinct_id !== 'string' || typeof event.uuid !== 'string') return;
  const uuid = event.uuid.toLowerCase();
  if (posthog.captures.some((capture) => capture.uuid?.toLowerCase() === uuid)) return;
  const properties = event.properties !== null && typeof event.properties === 'object' ? (event.properties as Record<string, unknown>) : {};
  const email = body.person?.properties?.email;
  posthog.record({
    uuid,
    event: event.event,
    distinctId: event.distinct_id,
    properties,
    ...(typeof event.timestamp === 'string' && Number.isFinite(Date.parse(event.timestamp))
      ? { timestamp: new Date(event.timestamp).toISOString() }
      : {}),
    ...(typeof email === 'string' ? { personEmail: email } : {}),
    ...(typeof body.person?.id === 'string' ? { personId: body.person.id } : {}),
  });
}
