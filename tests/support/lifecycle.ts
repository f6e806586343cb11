import { queueSender } from '../../lib/adapters/sqs/queue';
import type { Ledger, LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../../lib/adapters/dynamodb/lifecycle-index';
import { releaseDue, type ReleaseRun } from '../../lib/domain/lifecycle/release';
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
