import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME || 'referral-rewards';

/** One logger and one metrics buffer per container, shared by every handler invocation. */
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ serviceName, namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || 'ReferralRewards' });

export { MetricUnit };

/** Publishes what this invocation recorded; an invocation that recorded nothing stays quiet. */
export function flushMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
