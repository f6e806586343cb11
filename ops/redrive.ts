/**
 * `redrive`: dead-lettered referrals back to the source queue, for the worker to take up again.
 * Safe to repeat: the ledger resumes each referral at its first step not done and never pays
 * a completed one twice.
 *
 * Two ways:
 *  - 'move-task': SQS's own DLQ redrive (StartMessageMoveTask), then ListMessageMoveTasks until
 *    it finishes. What the AWS console's "Start DLQ redrive" does.
 *  - 'copy': receive → send (same body and attributes) → delete, one message at a time. For
 *    endpoints without move tasks (the local stack's fauxqs). A crash between send and delete
 *    leaves the message in both queues; the ledger makes the duplicate harmless.
 * 'auto' (default) tries the move task and falls back to copy when the endpoint does not know it.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
  type ListMessageMoveTasksResultEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { sleep } from '../lib/infra/retry';

export type RedriveMethod = 'auto' | 'move-task' | 'copy';

export interface RedriveTarget {
  sqs: SQSClient;
  queueUrl: string;
  deadLetterQueueUrl: string;
  /** An emulator: an UnsupportedOperation there means "not implemented", not "a task is already running". */
  emulated?: boolean;
}

export interface RedriveProgress {
  method: 'move-task' | 'copy';
  moved: number;
  toMove?: number;
  status: string;
}

export interface RedriveOptions {
  method?: RedriveMethod;
  /** move-task: wait for the task to finish (default true). */
  wait?: boolean;
  pollIntervalMs?: number;
  /** move-task: stop waiting after this long and report the task as still running (default 15 min). */
  maxWaitMs?: number;
  /** copy: move at most this many (default: the DLQ's depth when the redrive starts). */
  max?: number;
  onProgress?: (progress: RedriveProgress) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface RedriveResult {
  method: 'move-task' | 'copy';
  /** Why 'auto' fell back to copy. */
  fallbackReason?: string;
  /** COMPLETED, RUNNING (not waited for, or still going), FAILED, CANCELLED, CANCELLING. */
  status: string;
  moved: number;
  toMove?: number;
  /** copy: messages that could not be moved (left in the DLQ). */
  failed?: number;
  taskHandle?: string;
  /** Set when a move task was already running and this redrive followed it instead of starting one. */
  followedExistingTask?: boolean;
  error?: string;
}

export async function redrive(target: RedriveTarget, options: RedriveOptions = {}): Promise<RedriveResult> {
  const method = options.method ?? 'auto';
  if (method === 'copy') return copyRedrive(target, options);
  try {
    return await moveTaskRedrive(target, options);
  } catch (error) {
    if (method === 'auto' && isMoveTaskUnsupported(error, target.emulated ?? false)) {
      const result = await copyRedrive(target, options);
      return { ...result, fallbackReason: `the SQS endpoint does not support StartMessageMoveTask (${describeError(error)})` };
    }
    throw error;
  }
}

/**
 * True when the endpoint does not implement message move tasks (an emulator), as opposed to
 * AWS refusing this particular task. AWS answers UnsupportedOperation when a task is already
 * running on the queue, so that only counts as "not implemented" on an emulator.
 */
export function isMoveTaskUnsupported(error: unknown, emulated: boolean): boolean {
  const name = (error as { name?: string } | undefined)?.name ?? '';
  const message = (error as { message?: string } | undefined)?.message ?? '';
  if (/^(InvalidAction|UnknownOperation|UnknownOperationException|NotImplemented)$/.test(name)) return true;
  if (/unknown (action|operation)|not (yet )?implemented/i.test(message)) return true;
  return emulated && /UnsupportedOperation/.test(name);
}

const describeError = (error: unknown): string => `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`;

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const result = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  const arn = result.Attributes?.QueueArn;
  if (!arn) throw new Error(`no QueueArn for ${queueUrl}`);
  return arn;
}

async function moveTaskRedrive(target: RedriveTarget, options: RedriveOptions): Promise<RedriveResult> {
  const { sqs } = target;
  const [sourceArn, destinationArn] = await Promise.all([queueArn(sqs, target.deadLetterQueueUrl), queueArn(sqs, target.queueUrl)]);
  let taskHandle: string | undefined;
  let followedExistingTask = false;
  try {
    const started = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }));
    taskHandle = started.TaskHandle;
  } catch (error) {
    // AWS allows one task per queue: if one is running (a colleague's, the console's), follow it.
    if ((error as { name?: string })?.name !== 'UnsupportedOperation' || target.emulated) throw error;
    const running = (await latestTask(sqs, sourceArn))?.Status === 'RUNNING';
    if (!running) throw error;
    followedExistingTask = true;
  }

  const base = { method: 'move-task' as const, taskHandle, ...(followedExistingTask ? { followedExistingTask } : {}) };
  if (options.wait === false) return { ...base, status: 'RUNNING', moved: 0 };

  const wait = options.sleep ?? sleep;
  const now = options.now ?? Date.now;
  const giveUpAt = now() + (options.maxWaitMs ?? 15 * 60_000);
  for (;;) {
    const task = await latestTask(sqs, sourceArn);
    const status = task?.Status ?? 'RUNNING';
    const progress = { moved: task?.ApproximateNumberOfMessagesMoved ?? 0, toMove: task?.ApproximateNumberOfMessagesToMove };
    options.onProgress?.({ method: 'move-task', status, ...progress });
    if (status !== 'RUNNING' || now() >= giveUpAt) {
      return { ...base, status, ...progress, ...(task?.FailureReason ? { error: task.FailureReason } : {}) };
    }
    await wait(options.pollIntervalMs ?? 2_000);
  }
}

/** The most recent move task on the DLQ (SQS lists the latest first, at most 10). */
async function latestTask(sqs: SQSClient, sourceArn: string): Promise<ListMessageMoveTasksResultEntry | undefined> {
  const listed = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: sourceArn, MaxResults: 1 }));
  return listed.Results?.[0];
}

async function copyRedrive(target: RedriveTarget, options: RedriveOptions): Promise<RedriveResult> {
  const { sqs, queueUrl, deadLetterQueueUrl } = target;
  // Bounded by the depth at the start: a referral that fails again straight away comes back to
  // the DLQ as a new message, and must not be chased round in circles.
  let limit = options.max;
  if (limit === undefined) {
    const attributes = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    const depth = Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0);
    // The count is approximate and can lag a message that just arrived: 0 still gets one look.
    limit = depth > 0 ? depth : 10;
  }
  let moved = 0;
  let failed = 0;
  let error: string | undefined;
  while (moved + failed < limit && error === undefined) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: deadLetterQueueUrl,
        MaxNumberOfMessages: Math.min(10, limit - moved - failed),
        WaitTimeSeconds: 0,
        VisibilityTimeout: 60,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) break;
    for (const message of messages) {
      if (error !== undefined) {
        await releaseMessage(sqs, deadLetterQueueUrl, message.ReceiptHandle!);
        continue;
      }
      try {
        await sqs.send(
          new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: message.Body!, MessageAttributes: message.MessageAttributes }),
        );
      } catch (cause) {
        // Not sent: leave it in the DLQ, visible again, and stop.
        failed += 1;
        error = `could not send message ${message.MessageId} to the queue: ${describeError(cause)}`;
        await releaseMessage(sqs, deadLetterQueueUrl, message.ReceiptHandle!);
        continue;
      }
      try {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: deadLetterQueueUrl, ReceiptHandle: message.ReceiptHandle! }));
      } catch (cause) {
        // Sent but still in the DLQ: a later redrive sends it again, which the ledger makes harmless.
        error = `message ${message.MessageId} was sent back but could not be deleted from the DLQ: ${describeError(cause)}`;
      }
      moved += 1;
    }
    options.onProgress?.({ method: 'copy', moved, status: 'RUNNING' });
  }
  return {
    method: 'copy',
    status: error === undefined ? 'COMPLETED' : 'FAILED',
    moved,
    failed,
    ...(error !== undefined ? { error } : {}),
  };
}

async function releaseMessage(sqs: SQSClient, queueUrl: string, receiptHandle: string): Promise<void> {
  await sqs
    .send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: 0 }))
    .catch(() => undefined);
}

export function formatRedrive(result: RedriveResult): string {
  const lines: string[] = [];
  if (result.fallbackReason) lines.push(`Note: ${result.fallbackReason}; moved the messages one by one instead (receive → send → delete).`);
  if (result.method === 'move-task') {
    const how = result.followedExistingTask ? 'an SQS redrive task was already running; followed it' : 'SQS redrive task';
    const count = result.toMove !== undefined ? `${result.moved} of ${result.toMove}` : `${result.moved}`;
    lines.push(`Redrive (${how}): ${result.status}, ${count} message(s) moved back to the queue.`);
    if (result.status === 'RUNNING') lines.push('Still running: run `dlq list` to see what is left, or `redrive` again to follow it.');
  } else {
    lines.push(
      `Redrive (copy): ${result.status}, ${result.moved} message(s) moved back to the queue${result.failed ? `, ${result.failed} left in the DLQ` : ''}.`,
    );
  }
  if (result.error) lines.push(`Problem: ${result.error}`);
  if (result.moved > 0)
    lines.push(
      'The worker takes them up within seconds; `status <event>` follows a referral, `dlq list` shows anything that failed again.',
    );
  return lines.join('\n');
}
