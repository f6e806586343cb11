import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { documentClient } from '../lib/infra/aws-clients';
import { loadWorkerConfig, loadWorkerRuntimeConfig } from '../lib/infra/config';
import { deadLetter } from '../lib/adapters/sqs/deadletter';
import { redeliverIn } from '../lib/adapters/sqs/visibility';
import { planRedelivery } from '../lib/infra/redelivery';
import { dryRunFulfil } from '../lib/domain/dry-run';
import { errorMessage, PermanentError } from '../lib/domain/errors';
import { release } from '../lib/domain/steps';
import { referralLimitProblem } from '../lib/domain/limits';
import { maskEmail } from '../lib/infra/mask';
import {
  builtOnFirstCall,
  count,
  countApart,
  countForFunction,
  flushMetrics,
  logger,
  scopedLogger,
  type ScopedLogger,
} from '../lib/infra/observability';
import { parseReferral } from '../lib/domain/referral';
import { parsePersonEvent, type PersonEvent } from '../lib/domain/person-event';
import { handlePersonEvent, type PersonEventResult } from '../lib/domain/qualify';
import { fulfilReferral, type FulfilContext, type FulfilDeps, type FulfilResult } from '../lib/domain/rewards';
import { loadEnv } from '../lib/infra/secrets';
import { createWorkerDeps, statusFailureReport, stepRetry, type WorkerDeps } from '../lib/infra/wiring';

/** Time kept back from the Lambda timeout to record the outcome (ledger, DLQ) after the last retry. */
const SAFETY_MARGIN_MS = 3_000;

/** SQS → two gift cards + one Customer.io event per referral, reporting partial batch failures. */
export function makeWorkerHandler(deps: WorkerDeps) {
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    try {
      // The records of a batch run concurrently; each failed one is reported by its message id,
      // and a batch that fails whole is still only those records, never an invocation error.
      const settled = await Promise.allSettled(event.Records.map((record) => processOrDefer(record, deps, context)));
      return {
        batchItemFailures: event.Records.filter((_, i) => settled[i].status === 'rejected').map((r) => ({ itemIdentifier: r.messageId })),
      };
    } finally {
      flushMetrics();
    }
  };
}

/** How many times SQS has delivered the record, this delivery included. */
const receiveCount = (record: SQSRecord): number => Number(record.attributes?.ApproximateReceiveCount ?? 1);

/** The record's lease owner, and when its steps stop retrying so its outcome can still be recorded. */
function leaseFor(record: SQSRecord, context: Context): FulfilContext {
  const deadline = Date.now() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS;
  return { owner: `${context.awsRequestId}/${record.messageId}`, deadline };
}

type DeadLetterReason = Parameters<typeof deadLetter>[3];

/** Parks the record in the DLQ with `failure`, counted as `metric`. */
async function park(record: SQSRecord, deps: WorkerDeps, failure: DeadLetterReason, metric = 'RecordDeadLettered'): Promise<void> {
  await deadLetter(deps.sqs, deps.deadLetterQueueUrl, record, failure);
  count(metric);
}

/** The worker's hooks on fulfilment: each step's retry counted and logged, a status Customer.io refused reported. */
const reportingHooks = (fulfilDeps: FulfilDeps, log: ScopedLogger) => ({
  retry: stepRetry(fulfilDeps.retry, log),
  onStatusFailed: statusFailureReport(log),
});

/**
 * A record that fails is reported to SQS as failed, after setting when it comes back to fit the
 * cause (lib/infra/redelivery.ts). The last receive is left alone: SQS dead-letters it after the queue's timeout.
 */
async function processOrDefer(record: SQSRecord, deps: WorkerDeps, context: Context): Promise<void> {
  try {
    await processRecord(record, deps, context);
  } catch (error) {
    const received = receiveCount(record);
    if (received < deps.maxReceiveCount) await deferRedelivery(record, error, received, deps);
    throw error;
  }
}

async function deferRedelivery(record: SQSRecord, error: unknown, receiveCount: number, deps: WorkerDeps): Promise<void> {
  const plan = planRedelivery(error, receiveCount, deps.visibilityTimeoutSeconds);
  // Every line about a referral carries its eventId (undefined, and left out, for an unreadable body).
  const log = scopedLogger({
    eventId: (parseReferral(record.body) ?? parsePersonEvent(record.body))?.eventId,
    messageId: record.messageId,
  });
  try {
    await redeliverIn(deps.sqs, deps.queueUrl, record, plan.visibilitySeconds);
    count('RedeliveryDeferred');
    log.info('next delivery set', { receiveCount, inSeconds: plan.visibilitySeconds, cause: plan.cause });
  } catch (cause) {
    // Nothing is lost: the message keeps the queue's visibility timeout and comes back after it.
    count('RedeliveryDeferFailed');
    log.warn("could not set the next delivery: it comes back after the queue's visibility timeout", {
      receiveCount,
      inSeconds: deps.visibilityTimeoutSeconds,
      error: errorMessage(cause),
    });
  }
}

async function processRecord(record: SQSRecord, deps: WorkerDeps, context: Context): Promise<void> {
  const personEvent = parsePersonEvent(record.body);
  if (personEvent) return processPersonEvent(personEvent, record, deps, context);
  const referral = parseReferral(record.body);
  if (!referral) {
    const reason = { reason: 'invalid_message', message: 'queue message is not a referral this worker understands' };
    logger.error('dead-lettering unreadable message', { messageId: record.messageId, ...reason });
    return park(record, deps, reason);
  }
  const { eventId } = referral;
  const log = scopedLogger({ eventId, messageId: record.messageId });
  const lease = leaseFor(record, context);
  if (deps.dryRun) {
    // Outside the try below on purpose: a failed rehearsal must not record anything in the
    // ledger either; it is reported as a batch item failure and SQS redelivers it.
    await dryRunFulfil(referral, deps.ledger, log, await deps.fulfilDeps());
    // Parked, not acknowledged: a real referral that arrives during a rehearsal must still be
    // paid, so it waits in the DLQ (reason dry_run) for a redrive once DRY_RUN is off.
    return park(record, deps, { reason: 'dry_run', message: 'rehearsed by a DRY_RUN worker; redrive to pay it', eventId }, 'DryRun');
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
          count('ReferralMismatch');
          log.warn("queue message differs from the ledger's copy of the referral; using the ledger's", {
            fields: mismatch.map(({ field, message, ledger }) => ({ field, message: maskEmail(message), ledger: maskEmail(ledger) })),
          });
        },
        onIgnoredReferrerEmail: (named, codeOwner) => {
          // The code names the referrer; an email beside it is anyone's to type.
          count('ReferrerEmailOverriddenByCode');
          log.warn("the event's referrer email is not its referral code's owner; paying the code's owner", {
            named: maskEmail(named),
            codeOwner: maskEmail(codeOwner),
          });
        },
        ...reportingHooks(fulfilDeps, log),
      },
      lease,
    );
    reportOutcome(result, log);
  } catch (error) {
    const message = errorMessage(error);
    const { owner } = lease;
    if (error instanceof PermanentError) {
      log.error('permanent failure: dead-lettering', { reason: error.reason, error: message });
      await deps.ledger.fail(eventId, owner, error.reason, message).catch((cause: unknown) => {
        log.error('could not record the failure in the ledger', { error: errorMessage(cause) });
      });
      return park(record, deps, { reason: error.reason, message, eventId });
    }
    const received = receiveCount(record);
    if (received >= deps.maxReceiveCount) {
      // SQS moves the message to the DLQ after this receive; say so in the ledger while we still can.
      log.error('retries exhausted: SQS will dead-letter the message', { receiveCount: received, error: message });
      await deps.ledger.fail(eventId, owner, 'retries_exhausted', message).catch(() => undefined);
      count('RecordDeadLettered');
    } else {
      log.warn('retryable failure: SQS will redeliver', { receiveCount: received, error: message });
      await release(deps.ledger, eventId, owner, message).catch(() => undefined);
    }
    throw error;
  }
}

/**
 * A redeemer's qualifying or refund event (lib/domain/qualify.ts). Its failures are the referral's
 * it moved on (recorded there by the domain); the message itself is retried or dead-lettered, and
 * never recorded as a referral of its own. A DRY_RUN worker parks it as it parks a referral.
 */
async function processPersonEvent(event: PersonEvent, record: SQSRecord, deps: WorkerDeps, context: Context): Promise<void> {
  const { eventId } = event;
  const log = scopedLogger({ eventId, messageId: record.messageId });
  if (deps.dryRun) {
    const message = 'a person event reached a DRY_RUN worker; redrive to handle it';
    return park(record, deps, { reason: 'dry_run', message, eventId }, 'DryRun');
  }
  const lease = leaseFor(record, context);
  try {
    const fulfilDeps = await deps.fulfilDeps();
    const result = await handlePersonEvent(event, { ...fulfilDeps, ...reportingHooks(fulfilDeps, log) }, lease, fulfilReferral);
    reportPersonEvent(event, result, log);
  } catch (error) {
    const message = errorMessage(error);
    if (error instanceof PermanentError) {
      log.error('permanent failure on a person event: dead-lettering', { reason: error.reason, error: message });
      return park(record, deps, { reason: error.reason, message, eventId });
    }
    log.warn('retryable failure on a person event: SQS will redeliver', { receiveCount: receiveCount(record), error: message });
    throw error;
  }
}

function reportPersonEvent(event: PersonEvent, result: PersonEventResult, log: ScopedLogger): void {
  if (event.role === 'qualify' && result.outcome !== 'off' && result.outcome !== 'unvouched') {
    // Each vouched qualifying event handled: the alarm on qualifying events stopping reads it, per
    // function so each stage's alarm counts only its own (Lambda names it `<service>-<stage>-worker`).
    countForFunction('QualifyingEventsReceived', 1, 'worker');
  }
  switch (result.outcome) {
    case 'unvouched':
      countApart('PersonEventsRefused', 'reason', result.reason);
      log.warn('person event refused: the app did not vouch for it', { role: event.role, reason: result.reason });
      return;
    case 'qualified':
      log.info('referral qualified and continued', { referral: result.referral, outcome: result.result.outcome });
      if (result.result.outcome === 'completed') count('RewardsIssued', 2);
      return;
    case 'cancelled':
      count('ReferralsCancelledByRefund');
      log.info('referral cancelled by a refund before payout', { referral: result.referral });
      return;
    case 'revoke-requested':
      count('RevokesRequestedByRefund');
      log.warn('paid referral refunded: revoke recorded; the releaser deactivates both rewards on its next run', {
        referral: result.referral,
      });
      return;
    default:
      log.info('person event acknowledged', { role: event.role, outcome: result.outcome });
  }
}

function reportOutcome(result: FulfilResult, log: ScopedLogger): void {
  switch (result.outcome) {
    case 'completed':
      count('RewardsIssued', 2);
      log.info('referral fulfilled: 2 rewards created, Customer.io event sent');
      return;
    case 'rejected':
      // A metric per reason, so a spike of self-referrals is visible on its own.
      countApart('RewardsRefused', 'reason', result.reason);
      log.info('referral refused by the program rules', { reason: result.reason });
      return;
    case 'held':
      count('RewardsHeld');
      log.info('referral held: nothing issued until its release time', { releaseAt: new Date(result.releaseAt).toISOString() });
      return;
    case 'awaiting':
      log.info('referral waits for its qualifying event: nothing issued until then', {
        qualifyBy: new Date(result.qualifyBy).toISOString(),
      });
      return;
    case 'review':
      countApart('RewardsInReview', 'reason', result.reasons.join('+'));
      log.info('referral sent to review: nothing issued until an operator decides', { reasons: result.reasons });
      return;
    default:
      count('DuplicateDelivery');
      log.info(`duplicate delivery acknowledged: referral ${result.outcome.replace('already-', 'already ')}`);
  }
}

/**
 * Production wiring: the runtime settings once per container, the fulfilment settings each invocation
 * (lib/infra/wiring.ts). A misconfigured worker fails the invocation (builtOnFirstCall): SQS redelivers, then dead-letters.
 */
export const handler = builtOnFirstCall('worker', () => {
  const runtime = loadWorkerRuntimeConfig(process.env);
  if (runtime.dryRun) logger.warn('DRY_RUN is on: referrals are logged and parked in the DLQ (reason dry_run), NOT paid until redriven');
  return makeWorkerHandler(
    createWorkerDeps(runtime, async () => loadWorkerConfig(await loadEnv()), { sqs: new SQSClient({}), ddb: documentClient() }),
  );
});
