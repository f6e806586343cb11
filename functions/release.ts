import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { LifecycleLedger } from '../lib/lifecycle/ledger';
import { releaseDue, type ReleaserDeps } from '../lib/lifecycle/release';
import { flushMetrics, logger, metrics, MetricUnit } from '../lib/observability';

/** EventBridge schedule → the releaser (lib/lifecycle/release.ts), plus the review-age metric its alarm watches. */
export function makeReleaseHandler(deps: ReleaserDeps) {
  return async (): Promise<{ released: number; reviewOverADay: number }> => {
    try {
      const run = await releaseDue(deps);
      metrics.addMetric('RewardsReleased', MetricUnit.Count, run.released);
      // Emitted every run, zeros included, so the alarm sees a value rather than missing data.
      metrics.addMetric('ReviewWaitingOverADay', MetricUnit.Count, run.reviewOverADay);
      logger.info('release run', { ...run });
      return { released: run.released, reviewOverADay: run.reviewOverADay };
    } finally {
      flushMetrics();
    }
  };
}

function createDefaultDeps(): ReleaserDeps {
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  return { ledger: new LifecycleLedger(ddb, process.env.TABLE_NAME ?? ''), sqs: new SQSClient({}), queueUrl: process.env.QUEUE_URL ?? '' };
}

export const handler = makeReleaseHandler(createDefaultDeps());
