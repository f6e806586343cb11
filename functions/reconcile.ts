import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { documentClient } from '../lib/infra/aws-clients';
import { loadReconcilerConfig, type ReconcilerConfig } from '../lib/infra/config';
import { PermanentError } from '../lib/domain/errors';
import type { Fetch } from '../lib/infra/http';
import { count, flushMetrics, logger, scopedLogger } from '../lib/infra/observability';
import { reconcile, slidingWindow, type ReconcileReport } from '../lib/domain/reconcile';
import { reconcileDeps, reconcileOptions } from '../lib/infra/wiring';
import { loadEnv, RECONCILER_SECRET_KEYS } from '../lib/infra/secrets';

export interface ReconcileHandlerDeps {
  sqs: SQSClient;
  ddb: DynamoDBDocumentClient;
  config: () => Promise<ReconcilerConfig>;
  fetch?: Fetch;
  now?: () => number;
  /** Rows per Query API request (default 1,000); tests page through a few rows at a time. */
  pageSize?: number;
}

export type ReconcileResult = { status: 'off' } | ({ status: 'done' } & ReconcileReport);

/**
 * The scheduled reconciler (EventBridge, every RECONCILE_INTERVAL). A failed run throws: the
 * Lambda Errors alarm fires (after EventBridge's own retries), and ReconcileFailed is counted.
 */
export function makeReconcileHandler(deps: ReconcileHandlerDeps) {
  return async (_event?: unknown, context?: Context): Promise<ReconcileResult> => {
    if (context) logger.addContext(context);
    const log = scopedLogger({ job: 'reconcile' });
    try {
      const config = await deps.config();
      if (!config.enabled) {
        log.info('reconcile: off (set POSTHOG_PROJECT_ID, POSTHOG_PERSONAL_API_KEY and RECONCILE_FROM to turn it on)');
        return { status: 'off' };
      }
      const now = (deps.now ?? Date.now)();
      const report = await reconcile(
        reconcileDeps(config, { sqs: deps.sqs, ddb: deps.ddb, fetch: deps.fetch, log }),
        reconcileOptions(config, slidingWindow(config, now), { pageSize: deps.pageSize }),
      );
      count('ReconcileMissing', report.missing.length);
      count('ReconcileUnreconcilable', report.unreconcilable.length);
      count('ReconcileSeen', report.seen);
      if (report.personEvents) count('ReconcilePersonEventsQueued', report.personEvents.queued);
      return { status: 'done', ...report };
    } catch (error) {
      count('ReconcileFailed');
      // Reason codes and our own messages only: neither carries a key or an email.
      log.error('reconcile: run failed', {
        error: (error as Error)?.name ?? typeof error,
        reason: error instanceof PermanentError ? error.reason : undefined,
        message: (error as Error)?.message,
      });
      throw error;
    } finally {
      flushMetrics();
    }
  };
}

export const handler = makeReconcileHandler({
  sqs: new SQSClient({ requestHandler: { connectionTimeout: 1_000, requestTimeout: 5_000 } }),
  ddb: documentClient(),
  config: async () => loadReconcilerConfig(await loadEnv(process.env, undefined, RECONCILER_SECRET_KEYS)),
});
