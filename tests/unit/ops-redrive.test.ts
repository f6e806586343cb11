import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
  UnsupportedOperation,
  type Message,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { isMoveTaskUnsupported, redrive, type RedriveProgress, type RedriveTarget } from '../../ops/redrive';

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-prod-queue';
const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-prod-dlq';
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:000000000000:referral-rewards-prod-queue';
const DLQ_ARN = 'arn:aws:sqs:us-east-1:000000000000:referral-rewards-prod-dlq';

const sqsMock = mockClient(SQSClient);

function target(emulated = false): RedriveTarget {
  return { sqs: new SQSClient({ region: 'us-east-1' }), queueUrl: QUEUE_URL, deadLetterQueueUrl: DLQ_URL, emulated };
}

const unknownAction = () => Object.assign(new Error('Unknown action: StartMessageMoveTask'), { name: 'InvalidAction' });
const unsupported = (message: string) => new UnsupportedOperation({ message, $metadata: {} });

function deadLetter(n: number): Message {
  return {
    MessageId: `dead-${n}`,
    ReceiptHandle: `receipt-${n}`,
    Body: JSON.stringify({ v: 1, eventId: `event-${n}` }),
    MessageAttributes: {
      failureReason: { DataType: 'String', StringValue: 'shopify_auth' },
      eventId: { DataType: 'String', StringValue: `event-${n}` },
    },
  };
}

/** A DLQ holding `messages`, handed out once each. */
function dlqHolding(messages: Message[]): void {
  sqsMock
    .on(GetQueueAttributesCommand, { QueueUrl: DLQ_URL, AttributeNames: ['ApproximateNumberOfMessages'] })
    .resolves({ Attributes: { ApproximateNumberOfMessages: String(messages.length) } });
  let receive = sqsMock.on(ReceiveMessageCommand, { QueueUrl: DLQ_URL });
  for (const message of messages) receive = receive.resolvesOnce({ Messages: [message] });
  receive.resolves({ Messages: [] });
}

const noSleep = async () => undefined;

beforeEach(() => {
  sqsMock.reset();
  sqsMock
    .on(GetQueueAttributesCommand, { QueueUrl: DLQ_URL, AttributeNames: ['QueueArn'] })
    .resolves({ Attributes: { QueueArn: DLQ_ARN } });
  sqsMock
    .on(GetQueueAttributesCommand, { QueueUrl: QUEUE_URL, AttributeNames: ['QueueArn'] })
    .resolves({ Attributes: { QueueArn: QUEUE_ARN } });
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'sent' });
  sqsMock.on(DeleteMessageCommand).resolves({});
  sqsMock.on(ChangeMessageVisibilityCommand).resolves({});
});

describe('redrive on AWS: SQS message move task', () => {
  it('starts a move task from the DLQ to the queue and follows it to completion', async () => {
    // Prepare
    sqsMock.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-1' });
    sqsMock
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [{ Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 1, ApproximateNumberOfMessagesToMove: 3 }] })
      .resolves({ Results: [{ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 3, ApproximateNumberOfMessagesToMove: 3 }] });
    const progress: RedriveProgress[] = [];

    // Act
    const result = await redrive(target(), { sleep: noSleep, onProgress: (p) => progress.push(p) });

    // Assess
    expect(result).toEqual({ method: 'move-task', taskHandle: 'task-1', status: 'COMPLETED', moved: 3, toMove: 3 });
    expect(sqsMock).toHaveReceivedCommandWith(StartMessageMoveTaskCommand, { SourceArn: DLQ_ARN, DestinationArn: QUEUE_ARN });
    expect(sqsMock).toHaveReceivedCommandWith(ListMessageMoveTasksCommand, { SourceArn: DLQ_ARN });
    expect(progress.map((p) => [p.status, p.moved])).toEqual([
      ['RUNNING', 1],
      ['COMPLETED', 3],
    ]);
    expect(sqsMock).not.toHaveReceivedCommand(ReceiveMessageCommand);
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
    expect(sqsMock).not.toHaveReceivedCommand(DeleteMessageCommand);
  });

  it('returns at once with --no-wait', async () => {
    // Prepare
    sqsMock.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-1' });

    // Act
    const result = await redrive(target(), { wait: false });

    // Assess
    expect(result).toMatchObject({ method: 'move-task', status: 'RUNNING', taskHandle: 'task-1' });
    expect(sqsMock).not.toHaveReceivedCommand(ListMessageMoveTasksCommand);
  });

  it('reports a failed task with its reason', async () => {
    // Prepare
    sqsMock.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'task-1' });
    sqsMock.on(ListMessageMoveTasksCommand).resolves({
      Results: [
        { Status: 'FAILED', ApproximateNumberOfMessagesMoved: 1, ApproximateNumberOfMessagesToMove: 2, FailureReason: 'AccessDenied' },
      ],
    });

    // Act
    const result = await redrive(target(), { sleep: noSleep });

    // Assess
    expect(result).toMatchObject({ status: 'FAILED', moved: 1, error: 'AccessDenied' });
  });

  it('follows a move task already running on the DLQ instead of copying messages under it', async () => {
    // Prepare: AWS allows one task per queue and answers UnsupportedOperation to a second
    sqsMock.on(StartMessageMoveTaskCommand).rejects(unsupported('There is already a task running'));
    sqsMock
      .on(ListMessageMoveTasksCommand)
      .resolvesOnce({ Results: [{ Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 0, ApproximateNumberOfMessagesToMove: 2 }] })
      .resolves({ Results: [{ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 2, ApproximateNumberOfMessagesToMove: 2 }] });

    // Act
    const result = await redrive(target(), { sleep: noSleep });

    // Assess
    expect(result).toMatchObject({ method: 'move-task', followedExistingTask: true, status: 'COMPLETED', moved: 2 });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('does not fall back on AWS for an UnsupportedOperation that is not about a running task', async () => {
    // Prepare
    sqsMock.on(StartMessageMoveTaskCommand).rejects(unsupported('Source queue must be configured as a Dead Letter Queue.'));
    sqsMock.on(ListMessageMoveTasksCommand).resolves({ Results: [] });
    dlqHolding([deadLetter(1)]);

    // Act + Assess
    await expect(redrive(target(), { sleep: noSleep })).rejects.toThrow('Dead Letter Queue');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });
});

describe('redrive where move tasks are missing: receive → send → delete', () => {
  it('falls back to copying when the endpoint does not know StartMessageMoveTask', async () => {
    // Prepare
    sqsMock.on(StartMessageMoveTaskCommand).rejects(unknownAction());
    const messages = [deadLetter(1), deadLetter(2)];
    dlqHolding(messages);

    // Act
    const result = await redrive(target(true));

    // Assess: same body and attributes on the queue, then deleted from the DLQ
    expect(result).toMatchObject({ method: 'copy', status: 'COMPLETED', moved: 2, failed: 0 });
    expect(result.fallbackReason).toContain('InvalidAction');
    const sent = sqsMock.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
    expect(sent).toEqual(
      messages.map((message) => ({ QueueUrl: QUEUE_URL, MessageBody: message.Body, MessageAttributes: message.MessageAttributes })),
    );
    const deleted = sqsMock.commandCalls(DeleteMessageCommand).map((call) => call.args[0].input);
    expect(deleted).toEqual([
      { QueueUrl: DLQ_URL, ReceiptHandle: 'receipt-1' },
      { QueueUrl: DLQ_URL, ReceiptHandle: 'receipt-2' },
    ]);
  });

  it('falls back on an emulator that answers UnsupportedOperation', async () => {
    // Prepare
    sqsMock.on(StartMessageMoveTaskCommand).rejects(unsupported('Operation StartMessageMoveTask is not supported.'));
    dlqHolding([deadLetter(1)]);

    // Act
    const result = await redrive(target(true));

    // Assess
    expect(result).toMatchObject({ method: 'copy', moved: 1 });
    expect(sqsMock).not.toHaveReceivedCommand(ListMessageMoveTasksCommand);
  });

  it('never falls back when move-task is asked for explicitly', async () => {
    // Prepare
    sqsMock.on(StartMessageMoveTaskCommand).rejects(unknownAction());
    dlqHolding([deadLetter(1)]);

    // Act + Assess
    await expect(redrive(target(true), { method: 'move-task' })).rejects.toThrow('Unknown action');
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('copies without trying a move task when copy is asked for', async () => {
    // Prepare
    dlqHolding([deadLetter(1)]);

    // Act
    const result = await redrive(target(), { method: 'copy' });

    // Assess
    expect(result).toMatchObject({ method: 'copy', moved: 1 });
    expect(result.fallbackReason).toBeUndefined();
    expect(sqsMock).not.toHaveReceivedCommand(StartMessageMoveTaskCommand);
  });

  it('leaves a message it could not send in the DLQ, visible again, and stops', async () => {
    // Prepare
    sqsMock.on(SendMessageCommand).rejects(Object.assign(new Error('throttled'), { name: 'RequestThrottled' }));
    dlqHolding([deadLetter(1), deadLetter(2)]);

    // Act
    const result = await redrive(target(), { method: 'copy' });

    // Assess
    expect(result).toMatchObject({ method: 'copy', status: 'FAILED', moved: 0, failed: 1 });
    expect(result.error).toContain('RequestThrottled');
    expect(sqsMock).not.toHaveReceivedCommand(DeleteMessageCommand);
    expect(sqsMock).toHaveReceivedCommandWith(ChangeMessageVisibilityCommand, {
      QueueUrl: DLQ_URL,
      ReceiptHandle: 'receipt-1',
      VisibilityTimeout: 0,
    });
    expect(sqsMock).toHaveReceivedCommandTimes(ReceiveMessageCommand, 1);
  });
});

describe('isMoveTaskUnsupported', () => {
  it.each([
    [unknownAction(), false, true],
    [Object.assign(new Error('x'), { name: 'UnknownOperationException' }), false, true],
    [unsupported('not supported'), true, true],
    [unsupported('a task is already running'), false, false],
    [Object.assign(new Error('denied'), { name: 'AccessDenied' }), true, false],
  ])('%p on an emulator=%p → %p', (error, emulated, expected) => {
    expect(isMoveTaskUnsupported(error, emulated)).toBe(expected);
  });
});
