import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { RetryableError } from '../../domain/errors';
import type { PersonEvent } from '../../domain/person-event';
import type { Referral } from '../../domain/referral';

/**
 * Puts a referral, or a redeemer's qualifying or refund event (the worker tells them apart by
 * `kind`), on the work queue. Resolves only once SQS has acknowledged it, which is the moment
 * ingest may answer 202: before that PostHog must still be able to retry.
 */
export async function enqueueReferral(sqs: SQSClient, queueUrl: string, referral: Referral | PersonEvent): Promise<string | undefined> {
  try {
    const result = await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(referral),
        MessageAttributes: { eventId: { DataType: 'String', StringValue: referral.eventId } },
      }),
    );
    return result.MessageId;
  } catch (error) {
    throw new RetryableError('the queue did not accept the referral', { cause: error });
  }
}

/** enqueueReferral bound to one queue: what the releaser, review and the reconciler are handed. */
export const queueSender = (sqs: SQSClient, queueUrl: string) => (referral: Referral | PersonEvent) =>
  enqueueReferral(sqs, queueUrl, referral);
