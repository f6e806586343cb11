/**
 * `dlq list`: what is in the dead-letter queue and why, without taking anything out of it.
 *
 * SQS has no "peek": a message can only be read by receiving it, which hides it for the
 * visibility timeout. The listing receives with a short timeout (long enough to page through
 * the queue without seeing a message twice), then hands every message straight back with
 * ChangeMessageVisibility 0, so a redrive right after the listing sees them all.
 */
import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Ledger, type LedgerStatus } from '../lib/adapters/dynamodb/ledger';
import { maskEmail } from '../lib/infra/mask';
import { parseReferral } from '../lib/domain/referral';
import { queueDepth } from './queue-depth';
import { redact } from './redact';

export interface DeadLetterEntry {
  messageId: string;
  /** From the eventId attribute, else from the body; absent for an unreadable message. */
  eventId?: string;
  /** Set by the worker when it dead-lettered the message itself; absent when SQS moved it after maxReceiveCount receives. */
  failureReason?: string;
  failureMessage?: string;
  failedAt?: string;
  /** SQS SentTimestamp (ISO): when the worker dead-lettered it, or the original enqueue time if SQS moved it. */
  sentAt?: string;
  referrer?: string;
  redeemer?: string;
  /** The ledger's view, when the ledger was available. */
  ledger?: { status: LedgerStatus | 'NO_RECORD'; failureReason?: string };
}

export interface DeadLetterListing {
  queueUrl: string;
  /** ApproximateNumberOfMessages + NotVisible before the listing. */
  approximateDepth: number;
  messages: DeadLetterEntry[];
  /** True when --max stopped the listing before the queue was read to the end. */
  truncated: boolean;
}

export interface DeadLetterSource {
  sqs: SQSClient;
  deadLetterQueueUrl: string;
  /** With these the listing also reads each referral's ledger status (and the reason SQS-moved messages lack). */
  ddb?: DynamoDBDocumentClient;
  tableName?: string;
}

export interface ListOptions {
  /** At most this many messages (default 100). */
  max?: number;
  /** Seconds each message stays hidden while the listing pages (default 20); released at the end. */
  hideSeconds?: number;
}

export async function listDeadLetters(source: DeadLetterSource, options: ListOptions = {}): Promise<DeadLetterListing> {
  const { sqs, deadLetterQueueUrl: queueUrl } = source;
  const max = options.max ?? 100;
  const depth = await queueDepth(sqs, queueUrl);
  const approximateDepth = depth.visible + depth.inFlight;

  const received = new Map<string, Message>();
  let truncated = false;
  try {
    while (received.size < max) {
      const result = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, max - received.size),
          WaitTimeSeconds: 0,
          VisibilityTimeout: options.hideSeconds ?? 20,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['SentTimestamp'],
        }),
      );
      const batch = result.Messages ?? [];
      if (batch.length === 0) break;
      for (const message of batch) received.set(message.MessageId!, message);
    }
    truncated = received.size >= max && approximateDepth > received.size;
  } finally {
    await release(sqs, queueUrl, [...received.values()]);
  }

  const ledger = source.ddb && source.tableName ? new Ledger(source.ddb, source.tableName) : undefined;
  const messages = await Promise.all(
    [...received.values()].map(async (message): Promise<DeadLetterEntry> => {
      const entry = describe(message);
      if (ledger && entry.eventId) {
        const record = await ledger.get(entry.eventId).catch(() => undefined);
        entry.ledger = record ? { status: record.status, failureReason: record.failureReason } : { status: 'NO_RECORD' };
      }
      return entry;
    }),
  );
  messages.sort((a, b) => (a.failedAt ?? a.sentAt ?? '').localeCompare(b.failedAt ?? b.sentAt ?? ''));
  return { queueUrl, approximateDepth, messages, truncated };
}

/** Make the messages visible again at once; best effort (they reappear after hideSeconds anyway). */
async function release(sqs: SQSClient, queueUrl: string, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    const batch = messages.slice(i, i + 10);
    await sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((message, n) => ({ Id: String(n), ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 })),
        }),
      )
      .catch(() => undefined);
  }
}

function describe(message: Message): DeadLetterEntry {
  const attribute = (name: string): string | undefined => message.MessageAttributes?.[name]?.StringValue;
  const referral = parseReferral(message.Body ?? '');
  const sent = Number(message.Attributes?.SentTimestamp);
  return {
    messageId: message.MessageId!,
    eventId: attribute('eventId') ?? referral?.eventId,
    failureReason: attribute('failureReason'),
    failureMessage: redact(attribute('failureMessage')),
    failedAt: attribute('failedAt'),
    sentAt: Number.isFinite(sent) && sent > 0 ? new Date(sent).toISOString() : undefined,
    referrer: referral ? maskEmail(referral.referrerEmail) : undefined,
    redeemer: referral ? maskEmail(referral.redeemerEmail) : undefined,
  };
}

export function formatDeadLetters(listing: DeadLetterListing): string {
  if (listing.messages.length === 0) {
    return `The dead-letter queue is empty${listing.approximateDepth > 0 ? ` (SQS reports ~${listing.approximateDepth}, all in flight: try again in a minute)` : ''}.`;
  }
  const lines = [
    `${listing.messages.length} message(s) in the dead-letter queue${listing.truncated ? ` (first ${listing.messages.length} of ~${listing.approximateDepth}; --max for more)` : ''}:`,
  ];
  for (const entry of listing.messages) {
    lines.push('');
    lines.push(`  event ${entry.eventId ?? '(unreadable message: not a referral)'}   message ${entry.messageId}`);
    if (entry.referrer) lines.push(`    referrer ${entry.referrer} → redeemer ${entry.redeemer}`);
    const reason = entry.failureReason ?? (entry.ledger?.failureReason ? `${entry.ledger.failureReason} (from the ledger)` : undefined);
    lines.push(`    reason   ${reason ?? 'none recorded: SQS moved it after repeated retryable failures'}`);
    if (entry.failureMessage) lines.push(`    message  ${entry.failureMessage}`);
    lines.push(`    failed   ${entry.failedAt ?? '-'}   (SQS sent ${entry.sentAt ?? '-'})`);
    if (entry.ledger) lines.push(`    ledger   ${entry.ledger.status}`);
  }
  lines.push('');
  lines.push("Fix the cause (docs/OPERATIONS.md has one section per reason), then `redrive`. `status <event>` shows a referral's steps.");
  return lines.join('\n');
}
