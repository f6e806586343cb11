/** The local stack's background loops: what AWS schedules and alarms do when deployed. */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { releaseDue, type ReleaserDeps } from '../lib/domain/lifecycle/release';
import { say } from './output';

const DLQ_CHECK_INTERVAL_MS = 1_000;
/** The releaser's schedule here (every minute in AWS): a held referral is paid within seconds of its time. */
const RELEASE_INTERVAL_MS = 2_000;

/** The releaser (functions/release.ts in AWS): held referrals whose time has come go back to the worker. Returns its stop. */
export function startReleaser(releaser: ReleaserDeps): () => void {
  let releasing = true;
  let releaseTimer: NodeJS.Timeout | undefined;
  const shown = new Set<string>();
  const releaseTick = (): void => {
    showNewlyParked(releaser, shown)
      .then(() => releaseDue(releaser))
      .then((run) => {
        if (run.released > 0) say(`⏰ released ${run.released} held referral(s): the worker pays them now`);
        if (run.revoked > 0) say(`↩️  revoked ${run.revoked} refunded referral(s): both rewards deactivated`);
        for (const failed of run.revokesFailed) say(`⚠️  revoke of ${failed.referral} failed (${failed.error}); retried next run`);
        if (run.notQualified > 0)
          say(`⌛ ${run.notQualified} referral(s) NOT_QUALIFIED: no qualifying event by the deadline; nothing issued, final`);
      })
      .catch((error: unknown) => say(`⚠️  releaser: ${(error as Error)?.message ?? String(error)}`))
      .finally(() => {
        if (releasing) releaseTimer = setTimeout(releaseTick, RELEASE_INTERVAL_MS);
      });
  };
  releaseTimer = setTimeout(releaseTick, RELEASE_INTERVAL_MS);
  return () => {
    releasing = false;
    clearTimeout(releaseTimer);
  };
}

/**
 * Referrals the worker parked since the last look, printed once each: waiting for their
 * redeemer's qualifying event until when, held until when, or in review and why.
 */
async function showNewlyParked(releaser: ReleaserDeps, shown: Set<string>): Promise<void> {
  for (const queue of ['awaiting', 'held', 'review'] as const) {
    for (const record of await releaser.index.waiting(queue)) {
      const key = `${queue}:${record.eventId}`;
      if (shown.has(key) || (queue === 'awaiting' && record.status !== 'AWAITING')) continue;
      shown.add(key);
      say(
        queue === 'awaiting'
          ? `⏳ event ${record.eventId} waits for its redeemer's qualifying event (QUALIFY_EVENT) until ${new Date(Number(record.qualifyBy ?? 0)).toISOString()}: ` +
              'nothing issued yet; `npm run send-sample -- --qualify` sends it'
          : queue === 'held'
            ? `⏸  held event ${record.eventId} until ${new Date(record.releaseAt ?? 0).toISOString()} (REWARD_HOLD): nothing issued yet`
            : `🔍 event ${record.eventId} waits in review (${(record.reviewReasons ?? []).join(', ')}): \`npm run ops -- review list --local\``,
      );
    }
  }
}

/** The DLQ, watched: a permanent failure (or retries exhausted) lands there, and the depth change is printed. */
export function watchDeadLetterQueue(sqs: SQSClient, queueUrl: string): () => Promise<void> {
  let last = 0;
  const check = async (): Promise<void> => {
    const result = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    const depth = Number(result.Attributes?.ApproximateNumberOfMessages ?? 0);
    if (depth !== last) {
      say(
        depth > last
          ? `☠️  DLQ depth ${last} → ${depth}: a referral failed for good; the worker's ERROR log just above gives the reason.`
          : `☠️  DLQ depth ${last} → ${depth}`,
      );
      last = depth;
    }
  };
  return every(DLQ_CHECK_INTERVAL_MS, () => check().catch(() => undefined));
}

/**
 * Runs `task` every `intervalMs` (the first after `firstDelayMs`), each run after the previous one
 * settled. The returned stop ends the loop and waits for a run in progress.
 */
export function every(intervalMs: number, task: () => Promise<unknown>, firstDelayMs = intervalMs): () => Promise<void> {
  let running = true;
  let timer: NodeJS.Timeout | undefined;
  let pending: Promise<unknown> = Promise.resolve();
  const tick = (): void => {
    pending = task().finally(() => {
      if (running) timer = setTimeout(tick, intervalMs);
    });
  };
  timer = setTimeout(tick, firstDelayMs);
  return async () => {
    running = false;
    clearTimeout(timer);
    await pending;
  };
}
