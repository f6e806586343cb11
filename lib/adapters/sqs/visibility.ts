import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';

/**
 * Sets when a received message is delivered again: `seconds` from now. SQS counts the new timeout
 * from the ChangeMessageVisibility call, not from the receive, and applies it to this receive only
 * (the next receive starts again from the queue's visibility timeout); 0 to 43,200 s, and no more
 * than 12 hours after the receive in all
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html).
 *
 * With an SQS event source mapping and ReportBatchItemFailures, Lambda deletes the records the
 * function did not report and leaves the reported ones in flight until their visibility timeout
 * runs out (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): it does
 * not reset it, so the value set here is when the record comes back. The local poller
 * (local/poller.ts) does the same on fauxqs, which implements the call with the same semantics.
 *
 * A failed call loses nothing: the message keeps the timeout it was received with (the queue's),
 * so it still comes back, only later. The caller logs it and reports the record failed anyway.
 */
export async function redeliverIn(sqs: SQSClient, queueUrl: string, record: SQSRecord, seconds: number): Promise<void> {
  await sqs.send(
    new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }),
  );
}
