import { queueSender } from '../../lib/adapters/sqs/queue';
import type { Ledger, LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../../lib/adapters/dynamodb/lifecycle-index';
import { releaseDue, type ReleaserDeps, type ReleaseRun } from '../../lib/domain/lifecycle/release';
import { loadCustomerIoConfig, loadPostHogCaptureConfig, loadReleaserConfig, loadShopifyConfig } from '../../lib/infra/config';
import { releaserDeps } from '../../lib/infra/wiring';
import { sleep } from '../../lib/infra/retry';
import type { Pipeline } from './pipeline';

/** The lifecycle's ledger on a pipeline's table. */
export const lifecycleLedger = (pipeline: Pipeline): Ledger => pipeline.ledger;

/** The sparse lifecycle index on a pipeline's table, as the releaser and `review list` read it. */
export const lifecycleIndex = (pipeline: Pipeline): LifecycleIndexReader =>
  new LifecycleIndexReader(pipeline.ddb, pipeline.resources.tableName);

/** One run of the releaser against the pipeline, as the schedule would; `resendAfterMs: 0` so each run may resend. */
export const releaseOnce = (pipeline: Pipeline): Promise<ReleaseRun> =>
  releaseDue({
    ledger: lifecycleLedger(pipeline),
    index: lifecycleIndex(pipeline),
    enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl),
    resendAfterMs: 0,
  });

/**
 * The releaser as deployed (lib/infra/wiring.ts `releaserDeps`, from the pipeline's settings), its
 * Customer.io, PostHog and Shopify settings read from the pipeline's environment when used, as the
 * deployed one reads them from the worker's secret. `resendAfterMs: 0` so each run may resend.
 */
export function stackReleaser(pipeline: Pipeline, options: Pick<ReleaserDeps, 'now'> = {}): ReleaserDeps {
  const env = () => pipeline.env;
  return releaserDeps(
    loadReleaserConfig({ ...env(), TABLE_NAME: pipeline.resources.tableName, QUEUE_URL: pipeline.resources.queueUrl }),
    {
      sqs: pipeline.sqs,
      ddb: pipeline.ddb,
      customerio: async () => loadCustomerIoConfig(env()),
      posthog: async () => loadPostHogCaptureConfig(env()),
      shopify: async () => loadShopifyConfig(env()),
    },
    { resendAfterMs: 0, ...options },
  );
}

/** Waits (no assertion on how long) until the held referral's release time has passed. */
export async function untilReleaseTime(record: LifecycleRecord | undefined): Promise<void> {
  const releaseAt = Number(record?.releaseAt);
  if (!Number.isFinite(releaseAt)) throw new Error('the referral is not held');
  while (Date.now() <= releaseAt) await sleep(Math.min(200, releaseAt - Date.now() + 1));
}

/** The sparse index serverless.yml defines for HELD and REVIEW referrals (lib/adapters/dynamodb/ledger.ts). */
export const LIFECYCLE_INDEX_DEFINITION = {
  IndexName: 'lifecycle',
  KeySchema: [
    { AttributeName: 'lifecycleQueue', KeyType: 'HASH' },
    { AttributeName: 'lifecycleAt', KeyType: 'RANGE' },
  ],
  Projection: { ProjectionType: 'ALL' },
};
