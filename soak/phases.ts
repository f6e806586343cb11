/**
 * The main soak's phases on a running pipeline: the stream (with the pollers running), the late
 * copies of referrals that mostly finished, and the faults-off redrive of the DLQ with a drain.
 */
import { DeleteMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { sleep } from '../lib/infra/retry';
import { mapConcurrent } from '../bench/stats';
import type { Pipeline } from '../tests/support/pipeline';
import type { Delivery, Planned } from './plan';

export interface Observer {
  trace: (eventId: string | undefined, what: string) => void;
  problem: (eventId: string, text: string) => void;
  log: (line: string) => void;
}

/** Posts webhooks as PostHog would: a 5xx from ingest is retried (up to 5 attempts); any other surprise is a problem. */
export class Poster {
  public ingestRetries = 0;

  public constructor(
    private readonly pipeline: Pipeline,
    private readonly observer: Observer,
  ) {}

  public readonly post = async (item: Pick<Delivery, 'body' | 'uuid' | 'expect'>): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const response = await this.pipeline.post(item.body);
      const got =
        response.statusCode === 202
          ? 'queued'
          : response.statusCode === 422
            ? 'rejected'
            : response.statusCode === 200
              ? 'ignored'
              : 'error';
      this.observer.trace(item.uuid, `webhook → ${response.statusCode}`);
      if (got === item.expect) return;
      if (response.statusCode >= 500 && attempt < 5) {
        this.ingestRetries++;
        await sleep(100 * attempt);
        continue;
      }
      this.observer.problem(item.uuid, `ingest answered ${response.statusCode} ${JSON.stringify(response.body)}, expected ${item.expect}`);
      return;
    }
  };
}

/** Copies of referrals posted after the stream settled, chaos still on: how many were of finished referrals. */
export async function postLate(pipeline: Pipeline, late: Planned[], poster: Poster): Promise<number> {
  let ofFinished = 0;
  await mapConcurrent(late, 8, async (referral) => {
    const record = await pipeline.record(referral.uuid);
    if (record?.status === 'COMPLETED' || record?.status === 'REJECTED') ofFinished++;
    await poster.post({ body: referral.body, uuid: referral.uuid, expect: 'queued' });
  });
  return ofFinished;
}

export interface DeadLettered {
  messages: number;
  referrals: number;
  failedWithReason: number;
  inProgress: number;
  finished: number;
}

/**
 * Faults already off: a snapshot of the DLQ and its referrals' ledger states, then what an
 * operator's redrive does (Pipeline.redrive, with the bodies kept for the snapshot), a drain,
 * and more rounds while a hard crash's lease still bounces a message.
 */
export async function redriveAndDrain(
  pipeline: Pipeline,
  observer: Observer,
): Promise<{ deadLettered: DeadLettered; redriveRounds: number }> {
  const dead = await pipeline.deadLetters();
  const deadIds = [...new Set(dead.map((message) => messageEventId(message.Body)).filter((id): id is string => !!id))];
  const deadRecords = await mapConcurrent(deadIds, 16, (id) => pipeline.record(id));
  const deadLettered = {
    messages: dead.length,
    referrals: deadIds.length,
    failedWithReason: deadRecords.filter((r) => r?.status === 'FAILED' && !!r.failureReason).length,
    inProgress: deadRecords.filter((r) => r?.status === 'IN_PROGRESS').length,
    finished: deadRecords.filter((r) => r?.status === 'COMPLETED' || r?.status === 'REJECTED').length,
  };
  for (const id of deadIds) observer.trace(id, 'in the DLQ after the chaos phases');
  for (const message of dead) {
    await pipeline.sqs.send(new SendMessageCommand({ QueueUrl: pipeline.resources.queueUrl, MessageBody: message.Body! }));
    await pipeline.sqs.send(
      new DeleteMessageCommand({ QueueUrl: pipeline.resources.deadLetterQueueUrl, ReceiptHandle: message.ReceiptHandle! }),
    );
  }
  let redriveRounds = dead.length > 0 ? 1 : 0;
  await pipeline.drain(120_000);
  // A referral whose lease a hard crash left behind may bounce once more until the lease expires.
  for (let round = 0; round < 5; round++) {
    const again = await pipeline.redrive();
    if (again === 0) break;
    redriveRounds++;
    observer.log(`  redrive round ${redriveRounds}: ${again} messages`);
    await sleep(1_000);
    await pipeline.drain(120_000);
  }
  return { deadLettered, redriveRounds };
}

function messageEventId(body: string | undefined): string | undefined {
  try {
    const id = (JSON.parse(body ?? '') as { eventId?: unknown }).eventId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
