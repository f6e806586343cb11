import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { sleep } from '../lib/infra/retry';
import { lambdaContext } from './lambda-context';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: SqsHandler;
  functionName?: string;
  batchSize: number;
  /** The worker's Lambda timeout: the handler sees it counting down in context.getRemainingTimeInMillis(). */
  timeoutMs: number;
  waitTimeSeconds?: number;
  region?: string;
  onError?: (error: unknown) => void;
}

/**
 * What Lambda's SQS event source mapping does, on the real SQS API: long-poll a batch, invoke
 * the handler, delete the records it did not report in batchItemFailures. Failed records are
 * left alone, as Lambda leaves them: they come back when their visibility timeout runs out (the
 * one the worker set with ChangeMessageVisibility, which fauxqs implements, or the queue's) and,
 * after maxReceiveCount receives, the queue's redrive policy moves them to the DLQ — SQS's
 * behaviour, not ours.
 */
export class SqsPoller {
  private running = false;
  private loop?: Promise<void>;

  public constructor(private readonly options: PollerOptions) {}

  /** Receives one batch and processes it; resolves to the number of messages received. */
  public async pollOnce(waitTimeSeconds = this.options.waitTimeSeconds ?? 1): Promise<number> {
    const { sqs, queueUrl, batchSize } = this.options;
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: batchSize,
        WaitTimeSeconds: waitTimeSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return 0;

    const event: SQSEvent = { Records: messages.map((message) => this.toRecord(message)) };
    const context = lambdaContext(this.options.functionName ?? 'worker', this.options.timeoutMs);
    let failed: Set<string>;
    try {
      const response = await this.options.handler(event, context);
      failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch (error) {
      // A thrown invocation fails the whole batch, as on Lambda.
      this.options.onError?.(error);
      return messages.length;
    }
    const done = messages.filter((message) => !failed.has(message.MessageId ?? ''));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
    }
    return messages.length;
  }

  /** Polls until stop(); `concurrency` pollers run side by side, like concurrent Lambda instances. */
  public start(concurrency = 1): void {
    if (this.running) return;
    this.running = true;
    const worker = async () => {
      while (this.running) {
        try {
          await this.pollOnce();
        } catch (error) {
          this.options.onError?.(error);
          await sleep(500);
        }
      }
    };
    this.loop = Promise.all(Array.from({ length: concurrency }, worker)).then(() => undefined);
  }

  public async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private toRecord(message: Message): SQSRecord {
    const attributes = message.Attributes ?? {};
    const messageAttributes: SQSRecord['messageAttributes'] = {};
    for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
      messageAttributes[name] = {
        stringValue: value.StringValue,
        dataType: value.DataType ?? 'String',
        stringListValues: [],
        binaryListValues: [],
      };
    }
    return {
      messageId: message.MessageId ?? '',
      receiptHandle: message.ReceiptHandle ?? '',
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
        SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
        SenderId: attributes.SenderId ?? 'local',
        ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes,
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: this.options.queueArn,
      awsRegion: this.options.region ?? 'us-east-1',
    };
  }
}
