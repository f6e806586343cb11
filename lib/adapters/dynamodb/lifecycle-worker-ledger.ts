/**
 * The lifecycle's writes the worker makes on the ledger table (same table, same records as
 * lib/adapters/dynamodb/ledger.ts): take a released one up, count budgets and
 * referrer velocity. Each referral transition is ONE conditional write, fenced on the worker's
 * lease; a count is a few, each one conditional write on one item (./budget-counter.ts says why
 * that is exact), on items that stay small at any volume.
 *
 * Kept apart from the operator's and the releaser's writes (LifecycleLedger in ./lifecycle-ledger.ts
 * extends this class): the worker's bundle then carries only what the worker can call (issue
 * #13; the bundle target in docs/PERFORMANCE.md).
 */
import type { DynamoDBDocumentClient, UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { conditionalUpdate, LeaseLostError, readItem, referralKey } from './ledger';
import { BudgetCounter } from './budget-counter';
import type { LifecycleRecord, WorkerLifecyclePort } from '../../domain/lifecycle/ledger-port';

export const LIFECYCLE_INDEX = 'lifecycle';
// The lifecycle's types and pure rules live in its port (lib/domain/lifecycle/ledger-port.ts).

const velocityKey = (person: string): string => `velocity#${person}`;
export const QUEUE_ATTRIBUTES = ['lifecycleQueue', 'lifecycleAt'];
export { budgetKey } from './budget-counter';
/** Sightings a referrer's item may hold past `cap` before they are tidied. */
const VELOCITY_SLACK = 32;

/** Each referral's first sighting (ms): a retry adds a later entry for the same referral, which does not count. */
function firstSightings(ring: Record<string, unknown>): Map<string, number> {
  const firstSeen = new Map<string, number>();
  for (const entry of ring.recent instanceof Set ? (ring.recent as Set<string>) : []) {
    const at = Number(entry.slice(0, entry.indexOf(':')));
    const id = entry.slice(entry.indexOf(':') + 1);
    firstSeen.set(id, Math.min(at, firstSeen.get(id) ?? at));
  }
  return firstSeen;
}

export class WorkerLifecycleLedger implements WorkerLifecyclePort {
  public constructor(
    protected readonly client: DynamoDBDocumentClient,
    protected readonly tableName: string,
    protected readonly now: () => number = Date.now,
  ) {
    this.budgets = new BudgetCounter(client, tableName, now);
  }

  protected readonly budgets: BudgetCounter;

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
   * Counts `cents` against a budget period once per referral (./budget-counter.ts: a marker per
   * referral, the period's item holds only numbers): exact however many referrals race for the
   * last of it. With `limitCents` the count is refused past the limit; without, it always counts
   * (an approved referral). True when counted now or by an earlier attempt.
   */
  public async reserveBudget(period: string, eventId: string, cents: number, limitCents?: number): Promise<boolean> {
    if (limitCents !== undefined && cents > limitCents) return false;
    return (await this.budgets.change(period, eventId, true, cents, limitCents)) !== 'refused';
  }

  /** Gives a referral's share back, exactly once (only if it is still counted). */
  public async returnBudget(period: string, eventId: string, cents: number): Promise<boolean> {
    return (await this.budgets.change(period, eventId, false, cents)) === 'changed';
  }

  /**
   * Notes this referral against its referrer and returns how many of the referrer's referrals
   * (this one included) were first seen within `windowMs` up to this one's first sighting,
   * counted up to `cap` (the guard needs only "more than N"; the answer is min(count, cap)).
   *
   * Bounded at any volume: the referrer's item (`velocity#<person>`) keeps the latest `cap`
   * sightings (`<epoch ms>:<eventId>`, a few more between tidy-ups) and the newest time it ever
   * dropped (`droppedUpTo`); a referral whose window reaches back past that time is answered
   * `cap` (some of its window was dropped because `cap` newer ones existed: conservative, it goes
   * to review). The first answer is pinned on the referral's own marker
   * (`velocity#<person>#<eventId>`), so a retry gets the same one whatever arrived since.
   */
  public async referrerVelocity(person: string, eventId: string, windowMs: number, cap: number): Promise<number> {
    const now = this.now();
    const iso = new Date(now).toISOString();
    const most = cap + VELOCITY_SLACK * 8;
    const add = (bounded: boolean) =>
      this.update(
        {
          Key: { pk: velocityKey(person) },
          UpdateExpression: 'ADD recent :entry SET updatedAt = :iso',
          ...(bounded ? { ConditionExpression: 'attribute_not_exists(recent) OR size(recent) < :most' } : {}),
          ExpressionAttributeValues: { ':entry': new Set([`${now}:${eventId}`]), ':iso': iso, ...(bounded ? { ':most': most } : {}) },
          ReturnValues: 'ALL_NEW',
        },
        'lifecycle: could not count the referrer',
      );
    let ring = (await add(true)) as unknown as Record<string, unknown> | undefined;
    if (!ring) {
      // Tidy-ups failed long enough for the item to reach its bound: tidy now, then add.
      await this.trimVelocity(person, (await this.getItem(velocityKey(person))) ?? {}, now, windowMs, cap);
      ring = (await add(false)) as unknown as Record<string, unknown>;
    }
    const firstSeen = firstSightings(ring);
    const mine = firstSeen.get(eventId) ?? now;
    let count = [...firstSeen.values()].filter((at) => at <= mine && at > mine - windowMs).length;
    if (Number(ring.droppedUpTo ?? Number.NEGATIVE_INFINITY) > mine - windowMs) count = cap;
    const pinned = await this.update(
      {
        Key: { pk: `${velocityKey(person)}#${eventId}` },
        UpdateExpression: 'SET firstSeenAt = if_not_exists(firstSeenAt, :at), seenCount = if_not_exists(seenCount, :count), updatedAt = :iso',
        ExpressionAttributeValues: { ':at': mine, ':count': Math.min(count, cap), ':iso': iso },
        ReturnValues: 'ALL_NEW',
      },
      'lifecycle: could not count the referrer',
    );
    const recent = ring.recent instanceof Set ? ring.recent.size : 0;
    if (recent > cap + VELOCITY_SLACK || [...firstSeen.values()].some((at) => at <= now - windowMs)) {
      // Tidy-up only: failing here changes no verdict (the bound above forces one when it matters).
      await this.trimVelocity(person, ring, now, windowMs, cap).catch(() => undefined);
    }
    return Math.min(Number((pinned as unknown as Record<string, unknown> | undefined)?.seenCount ?? count), cap);
  }

  /** Drops sightings older than the window and all but the latest `cap`, noting the newest time dropped. */
  private async trimVelocity(person: string, ring: Record<string, unknown>, now: number, windowMs: number, cap: number): Promise<void> {
    const entries = ring.recent instanceof Set ? [...(ring.recent as Set<string>)] : [];
    const byTime = entries.map((entry) => ({ entry, at: Number(entry.slice(0, entry.indexOf(':'))) })).sort((a, b) => b.at - a.at);
    const drop = byTime.filter(({ at }, i) => i >= cap || at <= now - windowMs);
    if (drop.length === 0) return;
    const droppedUpTo = Math.max(...drop.map(({ at }) => at));
    const key = { pk: velocityKey(person) };
    const values = { ':drop': new Set(drop.map(({ entry }) => entry)) };
    const noted = await this.update(
      {
        Key: key,
        UpdateExpression: 'DELETE recent :drop SET droppedUpTo = :dropped',
        ConditionExpression: 'attribute_not_exists(droppedUpTo) OR droppedUpTo < :dropped',
        ExpressionAttributeValues: { ...values, ':dropped': droppedUpTo },
        ReturnValues: 'NONE',
      },
      'lifecycle: could not tidy the referrer count',
    );
    // A newer time was noted meanwhile: it covers ours.
    if (!noted) await this.update({ Key: key, UpdateExpression: 'DELETE recent :drop', ExpressionAttributeValues: values, ReturnValues: 'NONE' }, 'lifecycle: could not tidy the referrer count');
  }

  /** One conditional update: the new record (or {} without ReturnValues), undefined if its condition refused it. */
  protected async update(input: Omit<UpdateCommandInput, 'TableName'>, failure: string): Promise<LifecycleRecord | undefined> {
    return (await conditionalUpdate(this.client, this.tableName, input, failure)) as LifecycleRecord | undefined;
  }

  protected getItem(pk: string): Promise<Record<string, unknown> | undefined> {
    return readItem(this.client, this.tableName, pk, 'lifecycle: could not read the ledger');
  }
}
