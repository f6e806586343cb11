/**
 * The reward lifecycle's writes on the ledger table (same table, same records as lib/adapters/dynamodb/ledger.ts).
 * Each state change is ONE conditional write: the worker's are fenced on its lease, the
 * operator's on the status they move from, so redelivery, duplicates, concurrent workers and a
 * repeated command can never repeat or reorder one. The worker's own writes are in
 * ./lifecycle-worker-ledger.ts, which this class extends; only those are in the worker's bundle.
 *
 * A HELD or REVIEW record also carries `lifecycleQueue` (`held` | `review`) and `lifecycleAt`
 * (epoch ms: the release time, or when review began): the keys of the sparse `lifecycle` index
 * (serverless.yml). Only parked records have them, so the releaser and `review list` read just
 * the referrals waiting, never the table.
 */
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { classify, referralKey, type Role } from './ledger';
import type { LifecyclePort, LifecycleQueue, LifecycleRecord } from '../../domain/lifecycle/ledger-port';
import { LIFECYCLE_INDEX, QUEUE_ATTRIBUTES, WorkerLifecycleLedger } from './lifecycle-worker-ledger';

export { budgetPeriods, referralCents } from '../../domain/lifecycle/ledger-port';
export type { LifecycleRecord } from '../../domain/lifecycle/ledger-port';

/** Everything the lifecycle writes: the worker's (inherited), the releaser's and the operator's (review, revoke). */
export class LifecycleLedger extends WorkerLifecycleLedger implements LifecyclePort {
  /**
   * Operator: REVIEW → HELD until the hold the worker stored when it parked the referral
   * (`holdUntil`: its acceptance plus REWARD_HOLD), or due now for a record parked without one;
   * the releaser (or the enqueue that follows) hands it to the worker once due.
   */
  public approve(eventId: string, note: string | undefined): Promise<LifecycleRecord | undefined> {
    const now = this.now();
    return this.fromStatus(eventId, ['REVIEW'], {
      set: [
        '#status = :held',
        'releaseAt = if_not_exists(holdUntil, :now)',
        'lifecycleQueue = :queue',
        'lifecycleAt = if_not_exists(holdUntil, :now)',
        'reviewDecision = :approved',
        'reviewedAt = :iso',
      ],
      values: { ':held': 'HELD', ':now': now, ':queue': 'held', ':approved': 'approved' },
      note,
    });
  }

  /** Operator: REVIEW → REJECTED (`reviewer_rejected`), final. */
  public reject(eventId: string, note: string | undefined): Promise<LifecycleRecord | undefined> {
    return this.fromStatus(eventId, ['REVIEW'], {
      set: ['#status = :rejected', 'rejectionReason = :reason', 'reviewDecision = :decision', 'reviewedAt = :iso', 'rejectedAt = :iso'],
      values: { ':rejected': 'REJECTED', ':reason': 'reviewer_rejected', ':decision': 'rejected' },
      remove: QUEUE_ATTRIBUTES,
      note,
    });
  }

  /** Operator: a HELD or REVIEW referral voided before anything was issued. */
  public cancel(eventId: string, reason: string): Promise<LifecycleRecord | undefined> {
    return this.fromStatus(eventId, ['HELD', 'REVIEW'], {
      set: ['#status = :revoked', 'revokeReason = :revokeReason', 'revokedAt = :iso', 'revokedBeforePayout = :true'],
      values: { ':revoked': 'REVOKED', ':revokeReason': reason, ':true': true },
      remove: QUEUE_ATTRIBUTES,
    });
  }

  /** Operator: a COMPLETED referral is to be revoked (kept COMPLETED, so no worker takes it up, until both rewards are off). */
  public requestRevoke(eventId: string, reason: string): Promise<LifecycleRecord | undefined> {
    return this.fromStatus(eventId, ['COMPLETED'], {
      set: ['revokeReason = if_not_exists(revokeReason, :revokeReason)', 'revokeRequestedAt = if_not_exists(revokeRequestedAt, :iso)'],
      values: { ':revokeReason': reason },
    });
  }

  public recordDeactivated(eventId: string, role: Role, balanceLeft: string | undefined): Promise<LifecycleRecord | undefined> {
    return this.fromStatus(eventId, ['COMPLETED'], {
      set: [`${role}DeactivatedAt = if_not_exists(${role}DeactivatedAt, :iso)`, ...(balanceLeft ? [`${role}BalanceLeft = :balance`] : [])],
      values: balanceLeft ? { ':balance': balanceLeft } : {},
      condition: 'attribute_exists(revokeRequestedAt)',
    });
  }

  /** Both rewards are deactivated: COMPLETED → REVOKED. */
  public finishRevoke(eventId: string): Promise<LifecycleRecord | undefined> {
    return this.fromStatus(eventId, ['COMPLETED'], {
      set: ['#status = :revoked', 'revokedAt = :iso'],
      values: { ':revoked': 'REVOKED' },
      condition: 'attribute_exists(referrerDeactivatedAt) AND attribute_exists(redeemerDeactivatedAt)',
    });
  }

  public recordRevokeCaptured(eventId: string): Promise<LifecycleRecord | undefined> {
    return this.fromStatus(eventId, ['REVOKED'], { set: ['revokeCapturedAt = :iso'], values: {} });
  }

  public budgetSpent(period: string): Promise<{ cents: number; referrals: number }> {
    return this.budgets.spent(period);
  }

  /**
   * The releaser's claim to send a due referral's message now: refused if another run sent it
   * less than `resendAfterMs` ago (its message is still on its way), so runs do not pile copies
   * onto a busy queue; a lost send is simply made again after that.
   */
  public async claimReleaseSend(eventId: string, resendAfterMs: number): Promise<boolean> {
    const now = this.now();
    const claimed = await this.update(
      {
        Key: { pk: referralKey(eventId) },
        UpdateExpression: 'SET releaseSentAt = :now',
        ConditionExpression: 'lifecycleQueue = :held AND (attribute_not_exists(releaseSentAt) OR releaseSentAt < :cutoff)',
        ExpressionAttributeValues: { ':now': now, ':held': 'held', ':cutoff': now - resendAfterMs },
        ReturnValues: 'NONE',
      },
      'lifecycle: could not claim the release',
    );
    return claimed !== undefined;
  }

  /** Referrals waiting in `queue` with `lifecycleAt` up to `until` (epoch ms), oldest first. */
  public async waiting(queue: LifecycleQueue, until = Number.MAX_SAFE_INTEGER, limit = 1_000): Promise<LifecycleRecord[]> {
    const records: LifecycleRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client
        .send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: LIFECYCLE_INDEX,
            KeyConditionExpression: 'lifecycleQueue = :queue AND lifecycleAt <= :until',
            ExpressionAttributeValues: { ':queue': queue, ':until': until },
            ExclusiveStartKey: start,
            Limit: Math.min(100, limit - records.length),
          }),
        )
        .catch((error: unknown) => {
          throw classify(error, 'lifecycle: could not read the lifecycle index');
        });
      records.push(...((page.Items ?? []) as LifecycleRecord[]));
      start = page.LastEvaluatedKey;
    } while (start && records.length < limit);
    return records;
  }

  public async get(eventId: string): Promise<LifecycleRecord | undefined> {
    return (await this.getItem(referralKey(eventId))) as LifecycleRecord | undefined;
  }

  /** An operator's transition: only from one of `from`; undefined when the record is not there (read it to see why). */
  private fromStatus(
    eventId: string,
    from: string[],
    change: { set: string[]; values: Record<string, unknown>; remove?: string[]; condition?: string; note?: string },
  ): Promise<LifecycleRecord | undefined> {
    const iso = new Date(this.now()).toISOString();
    const set = ['updatedAt = :iso', ...change.set, ...(change.note ? ['reviewNote = :note'] : [])];
    const statuses = from.map((_, i) => `:from${i}`);
    return this.update(
      {
        Key: { pk: referralKey(eventId) },
        UpdateExpression: `SET ${set.join(', ')}${change.remove ? ` REMOVE ${change.remove.join(', ')}` : ''}`,
        ConditionExpression: [`#status IN (${statuses.join(', ')})`, change.condition].filter(Boolean).join(' AND '),
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ...change.values,
          ...Object.fromEntries(from.map((status, i) => [`:from${i}`, status])),
          ':iso': iso,
          ...(change.note ? { ':note': change.note } : {}),
        },
        ReturnValues: 'ALL_NEW',
      },
      'lifecycle: could not update the referral',
    );
  }

}
