import { SQSClient } from '@aws-sdk/client-sqs';
import { documentClient } from '../lib/infra/aws-clients';
import { loadCustomerIoConfig, loadPostHogCaptureConfig, loadReleaserConfig, loadShopifyConfig } from '../lib/infra/config';
import { releaseDue, type ReleaserDeps } from '../lib/domain/lifecycle/release';
import { builtOnFirstCall, count, countForFunction, flushMetrics, logger } from '../lib/infra/observability';
import { loadEnv } from '../lib/infra/secrets';
import { releaserDeps } from '../lib/infra/wiring';

/** EventBridge schedule → the releaser (lib/domain/lifecycle/release.ts), plus the review-age metric its alarm watches. */
export function makeReleaseHandler(deps: ReleaserDeps) {
  return async (): Promise<{ released: number; reviewOverADay: number }> => {
    try {
      const run = await releaseDue(deps);
      count('RewardsReleased', run.released);
      // Every run, zeros included: missing data means the releaser is not running (its alarm treats
      // that as breaching); the alarm on qualifying events stopping reads the second.
      countForFunction('ReviewWaitingOverADay', run.reviewOverADay, 'release');
      countForFunction('ReferralsAwaitingQualification', run.awaiting, 'release');
      count('ReferralsNotQualified', run.notQualified);
      if (run.expiryFollowUpsFailed > 0) {
        count('ExpiryFollowUpsFailed', run.expiryFollowUpsFailed);
        logger.warn('some expired referrals could not be finished (claims, capture or announcement); the next run retries them', {
          failed: run.expiryFollowUpsFailed,
        });
      }
      if (run.revoked > 0) count('RevokesFinished', run.revoked);
      if (run.revokesFailed.length > 0) {
        count('RevokesFailed', run.revokesFailed.length);
        // Each one named: a revoke failing run after run (a reward Shopify no longer knows) needs an operator.
        logger.warn("some refunded referrals' rewards could not be deactivated; the next run retries them", {
          failed: run.revokesFailed,
        });
      }
      logger.info('release run', { ...run, revokesFailed: run.revokesFailed.length });
      return { released: run.released, reviewOverADay: run.reviewOverADay };
    } finally {
      flushMetrics();
    }
  };
}

/**
 * Built on the first run, not at import: a missing TABLE_NAME or QUEUE_URL fails that run with the
 * setting named (the function's Errors alarm), instead of a scan of table "" at every schedule.
 */
export const handler = builtOnFirstCall('releaser', () =>
  makeReleaseHandler(
    releaserDeps(loadReleaserConfig(process.env), {
      sqs: new SQSClient({}),
      ddb: documentClient(),
      // The worker's secret (SECRET_ID), read only when a status is told, an outcome captured or a reward deactivated.
      customerio: async () => loadCustomerIoConfig(await loadEnv(process.env)),
      posthog: async () => loadPostHogCaptureConfig(await loadEnv(process.env)),
      shopify: async () => loadShopifyConfig(await loadEnv(process.env)),
    }),
  ),
);
