/**
 * The reward lifecycle's writes on the ledger table (same table, same records as lib/ledger.ts).
 * Each state change is ONE conditional write: the worker's are fenced on its lease, the
 * operator's on the status they move from, so redelivery, duplicates, concurrent workers and a
 * repeated command can never repeat or reorder one.
 *
 * A HELD or REVIEW record also carries `lifecycleQueue` (`held` | `review`) and `lifecycleAt`
 * (epoch ms: the release time, or when review began): the keys of the sparse `lifecycle` index
 * (serverless.yml). Only parked records have them, so the releaser and `review list` read just
 * the referrals waiting, never the table.
 */
import { QueryCommand, UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { classify, isConditionFailure, LeaseLostError, readItem, referralKey, type Role } from '../ledger';
import type { LifecyclePort, LifecycleQueue, LifecycleRecord, Park } from './ledger-port';

// The lifecycle's types live in its port (./ledger-port.ts); re-exported so importers of this module keep working.
export { budgetPeriods, referralCents } from './ledger-port';
export type { LifecycleFields, LifecyclePort, LifecycleQueue, LifecycleRecord, Park, ReviewReason } from './ledger-port';

export const LIFECYCLE_INDEX = 'lifecycle';
const budgetKey = (period: string): string => `budget#${period}`;
const velocityKey = (person: string): string => `velocity#${person}`;
const QUEUE_ATTRIBUTES = ['lifecycleQueue', 'lifecycleAt'];

export class LifecycleLedger implements LifecyclePort {
  public constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Worker, under its lease: HELD until `releaseAt`, or REVIEW. Frees the lease in the same write. */
  public async park(eventId: string, owner: string, park: Park): Promise<LifecycleRecord> {
    const now = this.now();
    const iso = new Date(now).toISOString();
    const held = park.status === 'HELD';
    const set = [
      '#status = :status',
      'lifecycleQueue = :queue',
      'lifecycleAt = :at',
      'parkedMessage = :message',
      'parkedAt = :iso',
      'budgetCents = :cents',
      'updatedAt = :iso',
      ...(held ? ['releaseAt = :at', 'heldAt = :iso'] : ['reviewReasons = :reasons', 'reviewSince = :iso']),
    ];
    const result = await this.update(
      {
        Key: { pk: referralKey(eventId) },
        UpdateExpression: `SET ${set.join(', ')} REMOVE leaseOwner, leaseExpiresAt`,
        ConditionExpression: 'leaseOwner = :owner',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':status': park.status,
          ':queue': held ? 'held' : 'review',
          ':at': held ? park.releaseAt : now,
          ':message': park.message,
          ':cents': park.budgetCents,
          ':iso': iso,
          ':owner': owner,
          ...(held ? {} : { ':reasons': park.reasons }),
        },
        ReturnValues: 'ALL_NEW',
      },
      'lifecycle: could not park the referral',
    );
    if (!result) throw new LeaseLostError(eventId);
    return result;
  }

  /** Worker, under its lease, once a HELD referral was taken up: out of the index, time noted. */
  public async markReleased(eventId: string, owner: string): Promise<LifecycleRecord> {
    const result = await this.update(
      {
        Key: { pk: referralKey(eventId) },
        UpdateExpression: `SET releasedAt = if_not_exists(releasedAt, :iso), updatedAt = :iso REMOVE ${QUEUE_ATTRIBUTES.join(', ')}`,
        ConditionExpression: 'leaseOwner = :owner',
        ExpressionAttributeValues: { ':iso': new Date(this.now()).toISOString(), ':owner': owner },
        ReturnValues: 'ALL_NEW',
      },
      'lifecycle: could not record the release',
    );
    if (!result) throw new LeaseLostError(eventId);
    return result;
  }

  /** Operator: REVIEW → HELD due now (the releaser or the enqueue that follows hands it to the worker). */
  public approve(eventId: string, note: string | undefined): Promise<LifecycleRecord | undefined> {
    const now = this.now();
    return this.fromStatus(eventId, ['REVIEW'], {
      set: ['#status = :held', 'releaseAt = :now', 'lifecycleQueue = :queue', 'lifecycleAt = :now', "reviewDecision = :approved", 'reviewedAt = :iso'],
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

  /**
   * Counts `cents` against a budget period once per referral (the period's item holds the set of
   * referrals counted), in one conditional write: exact however many referrals race for the last
   * of it. With `limitCents` the write is refused past the limit; without, it always counts
   * (an operator's approval). True when counted now or by an earlier attempt.
   */
  public async reserveBudget(period: string, eventId: string, cents: number, limitCents?: number): Promise<boolean> {
    if (limitCents !== undefined && cents > limitCents) return false;
    const limited = limitCents !== undefined;
    const counted = await this.update(
      {
        Key: { pk: budgetKey(period) },
        UpdateExpression: 'ADD spentCents :cents, eventIds :ids SET updatedAt = :iso',
        ConditionExpression:
          '(attribute_not_exists(eventIds) OR NOT contains(eventIds, :eventId))' +
          (limited ? ' AND (attribute_not_exists(spentCents) OR spentCents <= :room)' : ''),
        ExpressionAttributeValues: {
          ':cents': cents,
          ':ids': new Set([eventId]),
          ':eventId': eventId,
          ':iso': new Date(this.now()).toISOString(),
          ...(limited ? { ':room': limitCents - cents } : {}),
        },
        ReturnValues: 'NONE',
      },
      'lifecycle: could not count the budget',
    );
    if (counted !== undefined) return true;
    const item = await this.getItem(budgetKey(period));
    return item?.eventIds instanceof Set && item.eventIds.has(eventId);
  }

  /** Gives a referral's share back, exactly once (only if it is still counted). */
  public async returnBudget(period: string, eventId: string, cents: number): Promise<boolean> {
    const returned = await this.update(
      {
        Key: { pk: budgetKey(period) },
        UpdateExpression: 'ADD spentCents :cents DELETE eventIds :ids SET updatedAt = :iso',
        ConditionExpression: 'contains(eventIds, :eventId)',
        ExpressionAttributeValues: { ':cents': -cents, ':ids': new Set([eventId]), ':eventId': eventId, ':iso': new Date(this.now()).toISOString() },
        ReturnValues: 'NONE',
      },
      'lifecycle: could not return the budget',
    );
    return returned !== undefined;
  }

  public async budgetSpent(period: string): Promise<{ cents: number; referrals: number }> {
    const item = await this.getItem(budgetKey(period));
    return { cents: Number(item?.spentCents ?? 0), referrals: item?.eventIds instanceof Set ? item.eventIds.size : 0 };
  }

  /**
   * Notes this referral against its referrer and returns how many of the referrer's referrals
   * (this one included) fall within `windowMs` up to this one's first sighting. Entries are
   * `<epoch ms>:<eventId>` in a string set: a retry adds a second entry for the same referral,
   * which is counted once at its first time, so the answer does not grow on a retry.
   */
  public async referrerVelocity(person: string, eventId: string, windowMs: number): Promise<number> {
    const now = this.now();
    const result = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: velocityKey(person) },
        UpdateExpression: 'ADD recent :entry SET updatedAt = :iso',
        ExpressionAttributeValues: { ':entry': new Set([`${now}:${eventId}`]), ':iso': new Date(now).toISOString() },
        ReturnValues: 'ALL_NEW',
      }),
    ).catch((error: unknown) => {
      throw classify(error, 'lifecycle: could not count the referrer');
    });
    const firstSeen = new Map<string, number>();
    const recent = result.Attributes?.recent instanceof Set ? [...(result.Attributes.recent as Set<string>)] : [];
    for (const entry of recent) {
      const at = Number(entry.slice(0, entry.indexOf(':')));
      const id = entry.slice(entry.indexOf(':') + 1);
      firstSeen.set(id, Math.min(at, firstSeen.get(id) ?? at));
    }
    const mine = firstSeen.get(eventId) ?? now;
    const stale = recent.filter((entry) => Number(entry.slice(0, entry.indexOf(':'))) < now - windowMs);
    if (stale.length > 0) {
      // Tidy-up only: an entry this old can no longer count for anyone; failing here changes no verdict.
      await this.client
        .send(new UpdateCommand({ TableName: this.tableName, Key: { pk: velocityKey(person) }, UpdateExpression: 'DELETE recent :stale', ExpressionAttributeValues: { ':stale': new Set(stale) } }))
        .catch(() => undefined);
    }
    return [...firstSeen.values()].filter((at) => at <= mine && at > mine - windowMs).length;
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

  /** One conditional update: the new record (or {} without ReturnValues), undefined if its condition refused it. */
  private async update(input: Omit<UpdateCommandInput, 'TableName'>, failure: string): Promise<LifecycleRecord | undefined> {
    try {
      const result = await this.client.send(new UpdateCommand({ TableName: this.tableName, ...input }));
      return (result.Attributes ?? {}) as LifecycleRecord;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw classify(error, failure);
    }
  }

  private getItem(pk: string): Promise<Record<string, unknown> | undefined> {
    return readItem(this.client, this.tableName, pk, 'lifecycle: could not read the ledger');
  }
}
