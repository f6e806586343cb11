/**
 * Creates (or brings up to date) the PostHog insights that track the referral program:
 *
 *   1. a trend of `referral redeemed`, `referral reward fulfilled` and `referral reward rejected` per day,
 *      with the reward lifecycle's `referral reward held`, `… released` and `… revoked` (README "Reward lifecycle");
 *   2. a trend of `referral reward rejected` broken down by its `reason` property;
 *   3. a funnel `referral redeemed` → `referral reward fulfilled`;
 *
 * with pay on value (--qualify-within, or QUALIFY_EVENT in the environment), also
 *
 *   4. a funnel `referral redeemed` → `referral reward qualified` → `referral reward fulfilled`
 *      whose conversion window is QUALIFY_WITHIN, and
 *   5. the time to qualify (the same first two steps as a time-to-convert funnel);
 *
 * and, with --dashboard, a dashboard holding them. Idempotent: every object is looked up by
 * its exact name first; one that exists is left alone when it already says what we want, updated
 * (PATCH) when it does not (or skipped with --skip-existing); nothing is ever created twice.
 *
 *   POSTHOG_PERSONAL_API_KEY=phx_... npx tsx ops/posthog-insights.ts --host https://us.posthog.com --project 12345
 *
 * Standalone on purpose (`npm run ops` belongs to the operations CLI), though it shares that CLI's
 * output and usage error. This file is the command; the parts are in ops/posthog-insights/:
 * definitions.ts (the insights), api.ts (the REST client), ensure.ts (create or update), cli.ts.
 * Uses PostHog's private REST API (`/api/projects/:project_id/insights/`, `/dashboards/`) with the
 * `query` field (`InsightVizNode` wrapping a `TrendsQuery` / `FunnelsQuery`), not the legacy `filters`.
 * The personal API key needs the `insight:write` scope (plus `dashboard:write` for --dashboard).
 * The key is only ever sent in the Authorization header; it is never printed.
 */

export { PostHogApiError } from './posthog-insights/api';
export { runCli, USAGE, type InsightsCliIo } from './posthog-insights/cli';
export {
  conversionWindow,
  DEFAULT_DASHBOARD_NAME,
  QUALIFIED_EVENT,
  type InsightDefinition,
  type InsightKey,
  type ProgramEvents,
  type Qualification,
} from './posthog-insights/definitions';
export {
  contains,
  ensureReferralInsights,
  type Action,
  type InsightResult,
  type InsightsOptions,
  type InsightsReport,
} from './posthog-insights/ensure';
/** Bad options (before any request is sent): the ops CLI's own usage error, under the name this script always exported. */
export { UsageError as InsightsUsageError } from './args';

import { runCli } from './posthog-insights/cli';

if (require.main === module) {
  runCli(process.argv.slice(2), process.env, {
    fetch: globalThis.fetch,
    stdout: (line) => console.log(line),
    stderr: (line) => console.error(line),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`✖ unexpected: ${(error as Error)?.message ?? String(error)}`);
      process.exitCode = 1;
    },
  );
}
