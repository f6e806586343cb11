import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { EventSender } from '../../lib/domain/rewards';

/** The eventId in a queued body, which lib/adapters/sqs/queue.ts also sends as the eventId message attribute; undefined for unreadable bodies. */
function eventIdOf(body: string): string | undefined {
  try {
    const eventId = (JSON.parse(body) as { eventId?: unknown } | null)?.eventId;
    return typeof eventId === 'string' ? eventId : undefined;
  } catch {
    return undefined;
  }
}

/** An SQS record as the worker receives it, with the eventId attribute lib/adapters/sqs/queue.ts sets when the body carries one. */
export function sqsRecord(body: string, options: { messageId?: string; receiveCount?: number } = {}): SQSRecord {
  const { messageId = 'message-1', receiveCount = 1 } = options;
  const eventId = eventIdOf(body);
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: '1763633730000',
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: '1763633731000',
    },
    messageAttributes:
      eventId === undefined ? {} : { eventId: { dataType: 'String', stringValue: eventId, stringListValues: [], binaryListValues: [] } },
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:referral-rewards-queue',
    awsRegion: 'us-east-1',
  };
}

export const batch = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

/** Customer.io events that are always accepted. */
export function fakeCustomerIo() {
  return {
    sendFulfilment: jest.fn<ReturnType<EventSender['sendFulfilment']>, Parameters<EventSender['sendFulfilment']>>(async () => undefined),
  } satisfies EventSender;
}
