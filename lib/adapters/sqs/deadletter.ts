import { SendMessageCommand, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { RetryableError } from '../../domain/errors';

/**
 * Moves a permanently failed message to the DLQ ourselves, with the reason attached, instead
 * of failing it maxReceiveCount times: retries that cannot succeed would only delay the
 * operator. The body is untouched, so a redrive replays exactly what was queued.
 */
export async function deadLetter(
  sqs: SQSClient,
  deadLetterQueueUrl: string,
  record: SQSRecord,
  failure: { reason: string; message: string; eventId?: string },
): Promise<void> {
  const text = (StringValue: string): MessageAttributeValue => ({ DataType: 'String', StringValue });
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (value.stringValue !== undefined) attributes[name] = { DataType: value.dataType, StringValue: value.stringValue };
  }
  Object.assign(attributes, {
    failureReason: text(failure.reason),
    failureMessage: text(failure.message.slice(0, 1000) || '-'),
    failedAt: text(new Date().toISOString()),
    ...(failure.eventId ? { eventId: text(failure.eventId) } : {}),
  });
  try {
    await sqs.send(new SendMessageCommand({ QueueUrl: deadLetterQueueUrl, MessageBody: record.body, MessageAttributes: attributes }));
  } catch (error) {
    // Not on the DLQ means not deleted from the queue either: SQS redelivers and we try again.
    throw new RetryableError('could not move the message to the dead-letter queue', { cause: error });
  }
}
