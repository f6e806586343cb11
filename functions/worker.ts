import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { loadWorkerConfig } from '../lib/config';
import { deadLetter } from '../lib/deadletter';
import { dryRunFulfil } from '../lib/dry-run';
import { PermanentError } from '../lib/errors';
import { referralLimitProblem } from '../lib/limits';
import { Ledger, type LedgerPort } from '../lib/ledger';
import { maskEmail } from '../lib/mask';
import { flushMetrics, logger, metrics, MetricUnit, scopedLogger, type ScopedLogger } from '../lib/observability';
import { parseReferral } from '../lib/referral';
import { fulfilReferral, type FulfilDeps, type FulfilResult } from '../lib/rewards';
import { loadEnv } from '../lib/secrets';
import { cachedFulfilDeps } from '../lib/wiring';

export interface WorkerDeps {
  sqs: SQSClient;
  ledger: LedgerPort;
  deadLetterQueueUrl: string;
  /** The queue's redrive maxReceiveCount: on the last receive a retryable failure is recorded as FAILED. */
  maxReceiveCount: number;
  /** May throw PermanentError (bad config → DLQ) or RetryableError (Secrets Manager down). */
  fulfilDeps: () => Promise<FulfilDeps>;
  /** DRY_RUN: log what would be done, call nothing external, write nothing to the ledger, park in the DLQ as dry_run (lib/dry-run.ts). */
  dryRun?: boolean;
}

/** Time kept back from the Lambda timeout to record the outcome (ledger, DLQ) after the last retry. */
const SAFETY_MARGIN_MS = 3_000;

/** SQS → two gift cards + one Customer.io event per referral, reporting partial batch failures. */
export function makeWorkerHandler(deps: WorkerDeps) {
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    const processor = new BatchProcessor(EventType.SQS);
    try {
      return await processPartialResponse(event, (record: SQSRecord) => processRecord(record, deps, context), processor, {
        // A batch that fails whole is still only retryable records: report them, don't error the invocation.
        throwOnFullBatchFailure: false,
      });
    } finally {
      flushMetrics();
    }
  };
}

async function processRecord(record: SQSRecord, deps: WorkerDeps, context: Context): Promise<void> {
  const referral = parseReferral(record.body);
  if (!referral) {
    const reason = { reason: 'invalid_message', message: 'queue message is not a referral this worker understands' };
    logger.error('dead-lettering unreadable message', { messageId: record.messageId, ...reason });
    await deadLetter(deps.sqs, deps.deadLetterQueueUrl, record, reason);
    metrics.addMetric('RecordDeadLettered', MetricUnit.Count, 1);
    return;
  }
  const { eventId } = referral;
  const log = scopedLogger({ eventId, messageId: record.messageId });
  const owner = `${context.awsRequestId}/${record.messageId}`;
  const deadline = Date.now() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS;
  if (deps.dryRun) {
    // Outside the try below on purpose: a failed rehearsal must not record anything in the
    // ledger either; it is reported as a batch item failure and SQS redelivers it.
    await dryRunFulfil(referral, deps.ledger, log, await deps.fulfilDeps());
    // Parked, not acknowledged: a real referral that arrives during a rehearsal must still be
    // paid, so it waits in the DLQ (reason dry_run) for a redrive once DRY_RUN is off.
    await deadLetter(deps.sqs, deps.deadLetterQueueUrl, record, {
      reason: 'dry_run',
      message: 'rehearsed by a DRY_RUN worker; redrive to pay it',
      eventId,
    });
    metrics.addMetric('DryRun', MetricUnit.Count, 1);
    return;
  }
  try {
    // Before the ledger and the first Shopify call: a message that did not come through ingest
    // (hand-written, redriven from an older release) must not be paid and then fail to mail.
    const tooBig = referralLimitProblem(referral);
    if (tooBig) throw new PermanentError(tooBig.code, tooBig.message);
    const fulfilDeps = await deps.fulfilDeps();
    const result = await fulfilReferral(
      referral,
      {
        ...fulfilDeps,
        onMismatch: (mismatch) => {
          // A reused uuid, or a message ingest did not write: the ledger's copy is paid, this is for whoever investigates.
          metrics.addMetric('ReferralMismatch', MetricUnit.Count, 1);
          log.warn("queue message differs from the ledger's copy of the referral; using the ledger's", {
            fields: mismatch.map(({ field, message, ledger }) => ({ field, message: maskEmail(message), ledger: maskEmail(ledger) })),
          });
        },
        retry: {
          ...fulfilDeps.retry,
          onRetry: (error, attempt, delayMs) => {
            metrics.addMetric('StepRetry', MetricUnit.Count, 1);
            log.warn('retrying a step', { attempt, delayMs: Math.round(delayMs), error: error.message });
          },
        },
      },
      { owner, deadline },
    );
    reportOutcome(result, log);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof PermanentError) {
      log.error('permanent failure: dead-lettering', { reason: error.reason, error: message });
      await deps.ledger.fail(eventId, owner, error.reason, message).catch((cause: unknown) => {
        log.error('could not record the failure in the ledger', { error: String((cause as Error)?.message ?? cause) });
      });
      await deadLetter(deps.sqs, deps.deadLetterQueueUrl, record, { reason: error.reason, message, eventId });
      metrics.addMetric('RecordDeadLettered', MetricUnit.Count, 1);
      return;
    }
    const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? 1);
    if (receiveCount >= deps.maxReceiveCount) {
      // SQS moves the message to the DLQ after this receive; say so in the ledger while we still can.
      log.error('retries exhausted: SQS will dead-letter the message', { receiveCount, error: message });
      await deps.ledger.fail(eventId, owner, 'retries_exhausted', message).catch(() => undefined);
      metrics.addMetric('RecordDeadLettered', MetricUnit.Count, 1);
    } else {
      log.warn('retryable failure: SQS will redeliver', { receiveCount, error: message });
      await deps.ledger.release(eventId, owner, message).catch(() => undefined);
    }
    throw error;
  }
}

function reportOutcome(result: FulfilResult, log: ScopedLogger): void {
  switch (result.outcome) {
    case 'completed':
      metrics.addMetric('RewardsIssued', MetricUnit.Count, 2);
      log.info('referral fulfilled: 2 rewards created, Customer.io event sent');
      return;
    case 'rejected': {
      // A metric per reason, so a spike of self-referrals is visible on its own.
      const refused = metrics.singleMetric();
      refused.addDimension('reason', result.reason);
      refused.addMetric('RewardsRefused', MetricUnit.Count, 1);
      log.info('referral refused by the program rules', { reason: result.reason });
      return;
    }
    case 'held':
      metrics.addMetric('RewardsHeld', MetricUnit.Count, 1);
      log.info('referral held: nothing issued until its release time', { releaseAt: new Date(result.releaseAt).toISOString() });
      return;
    case 'review': {
      const review = metrics.singleMetric();
      review.addDimension('reason', result.reasons.join('+'));
      review.addMetric('RewardsInReview', MetricUnit.Count, 1);
      log.info('referral sent to review: nothing issued until an operator decides', { reasons: result.reasons });
      return;
    }
    default:
      metrics.addMetric('DuplicateDelivery', MetricUnit.Count, 1);
      log.info(`duplicate delivery acknowledged: referral ${result.outcome.replace('already-', 'already ')}`);
  }
}

/** Production wiring: clients once per container; config (and the cached secret) re-read each invocation. */
function createDefaultDeps(): WorkerDeps {
  const sqs = new SQSClient({});
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  const ledger = new Ledger(ddb, process.env.TABLE_NAME ?? '');
  const dryRun = /^(true|1|yes)$/i.test(process.env.DRY_RUN?.trim() ?? '');
  if (dryRun) logger.warn('DRY_RUN is on: referrals are logged and parked in the DLQ (reason dry_run), NOT paid until redriven');
  return {
    sqs,
    ledger,
    deadLetterQueueUrl: process.env.DLQ_URL ?? '',
    maxReceiveCount: Number(process.env.MAX_RECEIVE_COUNT || 5),
    dryRun,
    fulfilDeps: cachedFulfilDeps(async () => loadWorkerConfig(await loadEnv()), ledger),
  };
}

export const handler = makeWorkerHandler(createDefaultDeps());
