/**
 * The lifecycle's writes the worker makes on the ledger table (same table, same records as
 * lib/adapters/dynamodb/ledger.ts): park a referral HELD or in REVIEW, take a released one up, count budgets and
 * referrer velocity. Each is ONE conditional write, fenced on the worker's lease.
 *
 * Kept apart from the operator's and the releaser's writes (LifecycleLedger in ./lifecycle-ledger.ts
 * extends this class): the worker's bundle then carries only what the worker can call (issue
 * #13; the bundle target in docs/PERFORMANCE.md).
 */
import { UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { classify, conditionalUpdate, LeaseLostError, readItem, referralKey } from './ledger';
import type { LifecycleRecord, Park, WorkerLifecyclePort } from '../../domain/lifecycle/ledger-port';

export const LIFECYCLE_INDEX = 'lifecycle';
// The lifecycle's types and pure rules live in its port (lib/domain/lifecycle/ledger-port.ts).

export const budgetKey = (period: string): string => `budget#${period}`;
const velocityKey = (person: string): string => `velocity#${person}`;
export const QUEUE_ATTRIBUTES = ['lifecycleQueue', 'lifecycleAt'];

export class WorkerLifecycleLedger implements WorkerLifecyclePort {
  public constructor(
    protected readonly client: DynamoDBDocumentClient,
    protected readonly tableName: string,
    protected readonly now: () => number = Date.now,
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
      ...(held ? ['releaseAt = :at', 'heldAt = :iso'] : ['reviewReasons = :reasons', 'reviewSince = :iso', 'holdUntil = :holdUntil']),
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
          ...(held ? {} : { ':reasons': park.reasons, ':holdUntil': park.holdUntil }),
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

  /**
   * Notes this referral against its referrer and returns how many of the referrer's referrals
   * (this one included) fall within `windowMs` up to this one's first sighting. Entries are
   * `<epoch ms>:<eventId>` in a string set: a retry adds a second entry for the same referral,
   * which is counted once at its first time, so the answer does not grow on a retry.
   */
  public async referrerVelocity(person: string, eventId: string, windowMs: number): Promise<number> {
    const now = this.now();
    // No condition: it always writes, so update() never answers undefined here.
    const attributes = (await this.update(
      {
        Key: { pk: velocityKey(person) },
        UpdateExpression: 'ADD recent :entry SET updatedAt = :iso',
        ExpressionAttributeValues: { ':entry': new Set([`${now}:${eventId}`]), ':iso': new Date(now).toISOString() },
        ReturnValues: 'ALL_NEW',
      },
      'lifecycle: could not count the referrer',
    )) as Record<string, unknown> | undefined;
    const firstSeen = new Map<string, number>();
    const recent = attributes?.recent instanceof Set ? [...(attributes.recent as Set<string>)] : [];
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

  /** One conditional update: the new record (or {} without ReturnValues), undefined if its condition refused it. */
  protected async update(input: Omit<UpdateCommandInput, 'TableName'>, failure: string): Promise<LifecycleRecord | undefined> {
    return (await conditionalUpdate(this.client, this.tableName, input, failure)) as LifecycleRecord | undefined;
  }

  protected getItem(pk: string): Promise<Record<string, unknown> | undefined> {
    return readItem(this.client, this.tableName, pk, 'lifecycle: could not read the ledger');
  }
}
