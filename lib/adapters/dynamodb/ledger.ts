/**
 * The ledger on one DynamoDB table, for every role (worker, releaser, operator): a referral's
 * record and the counters. Each state change is ONE conditional write, built from the domain's
 * named parts (a Change, lib/domain/ledger-port.ts): fenced on the worker's lease (`write`), or on
 * the status an operator moves it from (`move`), so redelivery, duplicates, concurrent workers and
 * a repeated command can never repeat or reorder one. The counters are each a few conditional
 * writes on small items (./budget-counter.ts says why a budget's is exact).
 *
 * A HELD or REVIEW record also carries `lifecycleQueue` (`held` | `review`) and `lifecycleAt`
 * (epoch ms: the release time, or when review began): the keys of the sparse `lifecycle` index
 * (serverless.yml). Only parked records have them, so the releaser and `review list` read just
 * the referrals waiting, never the table (./lifecycle-index.ts: its Query is not in the worker's
 * code, nor in its role).
 */
import { UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import {
  LeaseLostError,
  NOW_ISO,
  NOW_MS,
  posthogDistinctId,
  type BeginInput,
  type BeginResult,
  type Change,
  type Counter,
  type LedgerPort,
  type LedgerRecord,
  type LedgerStatus,
  type ParkedStatus,
  type QualifyingFact,
} from '../../domain/ledger-port';
import type { Referral } from '../../domain/referral';
import { BudgetCounter } from './budget-counter';
import { ReferralCodeReader } from './referral-codes';
import type { ReferralCodeLookup } from '../../domain/referral-codes';
import { classify, conditionalUpdate, isConditionFailure, readItem } from './conditional';

export { classify, conditionalUpdate, isConditionFailure, readItem } from './conditional';

// The domain's types live in the port (lib/domain/ledger-port.ts); re-exported so importers of this module keep working.
export { LeaseLostError, ROLES } from '../../domain/ledger-port';
export type { Decision, LedgerPort, LedgerRecord, LedgerStatus, Role } from '../../domain/ledger-port';
export type { LifecycleRecord } from '../../domain/lifecycle/record';
export { budgetPeriods, referralCents } from '../../domain/lifecycle/record';

const velocityKey = (person: string): string => `velocity#${person}`;
const VELOCITY_FAILURE = 'lifecycle: could not count the referrer';
/** Sightings a referrer's item may hold past `cap` before they are tidied. */
const VELOCITY_SLACK = 32;

export const referralKey = (eventId: string): string => `referral#${eventId}`;
/** One item per redeemer (canonical email): which referral rewarded them. */
export const redeemerKey = (person: string): string => `redeemer#${person}`;
/** One item per referrer (canonical email): how many referrals rewarded them, and which. */
export const referrerKey = (person: string): string => `referrer#${person}`;
/** One item per person key (lib/domain/qualify.ts `personKeys`): which referral it points at. */
export const personKey = (person: string): string => `person#${person}`;
/** One item per person key: the latest qualifying event heard for it (with a TTL). */
export const qualifyingKey = (person: string): string => `qualifying#${person}`;
/** One item per person event handled (with a TTL): the catch-up queues only events without it. */
export const personEventKey = (eventId: string): string => `person-event#${eventId.toLowerCase()}`;

/** The single-holder counters' items: a redeemer's claim, a person key's referral. */
const holderKey = (counter: Extract<Counter, { kind: 'redeemer' | 'person' }>): string =>
  counter.kind === 'redeemer' ? redeemerKey(counter.person) : personKey(counter.person);

/**
 * Who may write a referral outside the lease-fenced steps (`begin` taking it up, `fail`
 * recording a failure): it is new, or not finished (completed or rejected) and its lease is
 * free, expired or already `:owner`'s. Values from openAndFreeValues.
 * A lifecycle-parked referral is not open either: in REVIEW or REVOKED never, HELD only once
 * its `releaseAt` (epoch ms) has passed — taking it up then is its release.
 */
const OPEN_AND_FREE =
  'attribute_not_exists(pk) OR (#status <> :completed AND #status <> :rejected AND ' +
  '#status <> :review AND #status <> :revoked AND #status <> :awaiting AND #status <> :notQualified AND ' +
  '(#status <> :held OR releaseAt <= :now) AND ' +
  '(attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :now OR leaseOwner = :owner))';

const openAndFreeValues = (now: number, owner: string) => ({
  ':completed': 'COMPLETED',
  ':rejected': 'REJECTED',
  ':held': 'HELD',
  ':review': 'REVIEW',
  ':revoked': 'REVOKED',
  ':awaiting': 'AWAITING',
  ':notQualified': 'NOT_QUALIFIED',
  ':now': now,
  ':owner': owner,
});

const PARKED: readonly string[] = ['HELD', 'REVIEW', 'REVOKED', 'AWAITING', 'NOT_QUALIFIED'] satisfies ParkedStatus[];
const isParked = (record: LedgerRecord | undefined): record is LedgerRecord & { status: ParkedStatus } =>
  record !== undefined && PARKED.includes(record.status);

export class Ledger implements LedgerPort {
  private readonly budgets: BudgetCounter;
  /** The worker's reads of the referral-code items, which live in this table (./referral-codes.ts). */
  public readonly codes: ReferralCodeLookup;

  public constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    this.budgets = new BudgetCounter(client, tableName, now);
    this.codes = new ReferralCodeReader(client, tableName);
  }

  /**
   * Creates the record or takes it over, in one conditional write (OPEN_AND_FREE);
   * `if_not_exists` keeps codes written by an earlier attempt, so every retry reuses them.
   */
  public async begin(referral: Referral, input: BeginInput): Promise<BeginResult> {
    const now = this.now();
    const update = expression(
      {
        step: 'begin',
        set: { status: 'IN_PROGRESS', eventId: referral.eventId, leaseOwner: input.owner, leaseExpiresAt: input.leaseUntil },
        setIfAbsent: {
          createdAt: NOW_ISO,
          referrerEmail: referral.referrerEmail,
          redeemerEmail: referral.redeemerEmail,
          customerEmail: referral.customerEmail,
          distinctId: posthogDistinctId(referral),
          rewardType: input.rewardType,
          rewardAmount: input.rewardAmount,
          referrerCode: input.codes.referrer,
          redeemerCode: input.codes.redeemer,
          customerioEventId: input.customerioEventId,
        },
        add: { attempts: 1 },
      },
      now,
      OPEN_AND_FREE,
      openAndFreeValues(now, input.owner),
    );
    try {
      const result = await this.client.send(
        new UpdateCommand({ TableName: this.tableName, Key: { pk: referralKey(referral.eventId) }, ...update, ReturnValues: 'ALL_NEW' }),
      );
      return { outcome: 'acquired', record: result.Attributes as LedgerRecord };
    } catch (error) {
      if (!isConditionFailure(error)) throw classify(error, 'ledger: could not start the referral');
      const record = await this.get(referral.eventId);
      if (record?.status === 'COMPLETED') return { outcome: 'completed', record };
      if (record?.status === 'REJECTED') return { outcome: 'rejected', record };
      if (isParked(record) && !(record.status === 'HELD' && Number(record.releaseAt) <= now)) return { outcome: 'parked', record };
      return { outcome: 'busy', record };
    }
  }

  /**
   * Every step after `begin` is fenced on the lease: if another worker took the referral over
   * (ours expired), our write fails instead of racing theirs, and we stop.
   */
  public async write(eventId: string, owner: string, change: Change): Promise<LedgerRecord> {
    const update = expression(change, this.now(), 'leaseOwner = :owner', { ':owner': owner });
    try {
      const result = await this.client.send(
        new UpdateCommand({ TableName: this.tableName, Key: { pk: referralKey(eventId) }, ...update, ReturnValues: 'ALL_NEW' }),
      );
      return result.Attributes as LedgerRecord;
    } catch (error) {
      if (isConditionFailure(error)) throw new LeaseLostError(eventId);
      throw classify(error, `ledger: could not record progress (${change.step})`);
    }
  }

  /** An operator's move: only from one of `from`; undefined when the record is not there (read it to see why). */
  public async move(eventId: string, from: readonly LedgerStatus[], change: Change): Promise<LedgerRecord | undefined> {
    const statuses = Object.fromEntries(from.map((status, i) => [`:from${i}`, status]));
    const update = expression(change, this.now(), `#status IN (${Object.keys(statuses).join(', ')})`, statuses);
    const moved = await conditionalUpdate(
      this.client,
      this.tableName,
      { Key: { pk: referralKey(eventId) }, ...update, ReturnValues: 'ALL_NEW' },
      `ledger: could not ${change.step}`,
    );
    return moved as LedgerRecord | undefined;
  }

  /**
   * A permanent failure (or retries exhausted): the message is on its way to the DLQ, and a
   * redrive may take the record up again. Unlike the steps this needs no lease of ours: a
   * config error can fail a referral before it ever began. It never overwrites a completed
   * record or one another worker is actively holding.
   */
  public fail(eventId: string, owner: string, reason: string, message: string): Promise<boolean> {
    const now = this.now();
    const change: Change = {
      step: 'fail',
      set: { status: 'FAILED', eventId, failureReason: reason, lastError: message, failedAt: NOW_ISO },
      setIfAbsent: { createdAt: NOW_ISO },
      // Out of the lifecycle index too (a released referral that failed before it left it): a
      // FAILED record waits for a redrive, not the releaser, and must not crowd its reads. Never a
      // parked one: OPEN_AND_FREE refuses HELD and REVIEW records.
      remove: ['lifecycleQueue', 'lifecycleAt'],
      freeLease: true,
    };
    const update = expression(change, now, OPEN_AND_FREE, openAndFreeValues(now, owner));
    return this.tryUpdate({ Key: { pk: referralKey(eventId) }, ...update }, 'ledger: could not record the failure');
  }

  public async get(eventId: string): Promise<LedgerRecord | undefined> {
    return (await this.getItem(referralKey(eventId))) as LedgerRecord | undefined;
  }

  /**
   * Redeemer: one item per person naming the referral that holds it; the same referral may claim
   * again, `takeOver` names a refused referral's leftover claim. Referrer: the counter and the set
   * of counted referrals change in one conditional write, so concurrent referrals cannot overshoot
   * the cap and a retry is not counted again; the set holds at most `cap` ids and
   * MAX_REWARDS_PER_REFERRER is at most 1000 (lib/infra/config.ts): ~40 KB, far inside an item's
   * 400 KB. Budget: ./budget-counter.ts, a marker per referral, exact past any number of them.
   */
  public async count(counter: Counter, eventId: string, options: { limit?: number; takeOver?: string } = {}): Promise<boolean> {
    const iso = new Date(this.now()).toISOString();
    const { limit, takeOver } = options;
    if (counter.kind === 'budget') {
      if (limit !== undefined && counter.cents > limit) return false;
      return (await this.budgets.change(counter.period, eventId, true, counter.cents, limit)) !== 'refused';
    }
    if (counter.kind === 'redeemer' || counter.kind === 'person') {
      return this.tryUpdate(
        {
          Key: { pk: holderKey(counter) },
          UpdateExpression: 'SET eventId = :eventId, claimedAt = :iso',
          ConditionExpression: `attribute_not_exists(eventId) OR eventId = :eventId${takeOver ? ' OR eventId = :stale' : ''}`,
          ExpressionAttributeValues: { ':eventId': eventId, ':iso': iso, ...(takeOver ? { ':stale': takeOver } : {}) },
        },
        'ledger: could not claim the redeemer',
      );
    }
    const counted = await this.tryUpdate(
      {
        Key: { pk: referrerKey(counter.person) },
        UpdateExpression: 'ADD rewardCount :one, eventIds :ids SET updatedAt = :iso',
        ConditionExpression: `attribute_not_exists(pk) OR (${limit === undefined ? '' : 'rewardCount < :cap AND '}NOT contains(eventIds, :eventId))`,
        ExpressionAttributeValues: {
          ':one': 1,
          ':ids': new Set([eventId]),
          ':eventId': eventId,
          ':iso': iso,
          ...(limit === undefined ? {} : { ':cap': limit }),
        },
      },
      'ledger: could not count the referrer',
    );
    // Refused: either the cap is reached, or this referral was counted by an earlier attempt.
    return counted || (await this.holders(counter)).includes(eventId);
  }

  public async uncount(counter: Counter, eventId: string): Promise<boolean> {
    const iso = new Date(this.now()).toISOString();
    if (counter.kind === 'budget') return (await this.budgets.change(counter.period, eventId, false, counter.cents)) === 'changed';
    if (counter.kind === 'redeemer' || counter.kind === 'person') {
      return this.tryUpdate(
        {
          Key: { pk: holderKey(counter) },
          UpdateExpression: 'REMOVE eventId, claimedAt SET releasedAt = :iso',
          ConditionExpression: 'eventId = :eventId',
          ExpressionAttributeValues: { ':eventId': eventId, ':iso': iso },
        },
        'ledger: could not release the redeemer',
      );
    }
    return this.tryUpdate(
      {
        Key: { pk: referrerKey(counter.person) },
        UpdateExpression: 'DELETE eventIds :ids ADD rewardCount :minusOne SET updatedAt = :iso',
        ConditionExpression: 'contains(eventIds, :eventId)',
        ExpressionAttributeValues: { ':ids': new Set([eventId]), ':minusOne': -1, ':eventId': eventId, ':iso': iso },
      },
      'ledger: could not release the referrer slot',
    );
  }

  public async holders(counter: Counter): Promise<string[]> {
    if (counter.kind === 'budget') return [];
    const item = await this.getItem(counter.kind === 'referrer' ? referrerKey(counter.person) : holderKey(counter));
    if (counter.kind !== 'referrer') return typeof item?.eventId === 'string' ? [item.eventId] : [];
    return item?.eventIds instanceof Set ? [...(item.eventIds as Set<string>)] : [];
  }

  public spent(period: string): Promise<{ cents: number; referrals: number }> {
    return this.budgets.spent(period);
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
  public async velocity(person: string, eventId: string, windowMs: number, cap: number): Promise<number> {
    const now = this.now();
    const iso = new Date(now).toISOString();
    const most = cap + VELOCITY_SLACK * 8;
    const add = (bounded: boolean) =>
      conditionalUpdate(
        this.client,
        this.tableName,
        {
          Key: { pk: velocityKey(person) },
          UpdateExpression: 'ADD recent :entry SET updatedAt = :iso',
          ...(bounded ? { ConditionExpression: 'attribute_not_exists(recent) OR size(recent) < :most' } : {}),
          ExpressionAttributeValues: { ':entry': new Set([`${now}:${eventId}`]), ':iso': iso, ...(bounded ? { ':most': most } : {}) },
          ReturnValues: 'ALL_NEW',
        },
        VELOCITY_FAILURE,
      );
    let ring = await add(true);
    if (!ring) {
      // Tidy-ups failed long enough for the item to reach its bound: tidy now, then add.
      await this.trimVelocity(person, (await this.getItem(velocityKey(person))) ?? {}, now, windowMs, cap);
      ring = (await add(false)) ?? {};
    }
    const firstSeen = firstSightings(ring);
    const mine = firstSeen.get(eventId) ?? now;
    let count = [...firstSeen.values()].filter((at) => at <= mine && at > mine - windowMs).length;
    if (Number(ring.droppedUpTo ?? Number.NEGATIVE_INFINITY) > mine - windowMs) count = cap;
    const pinned = await conditionalUpdate(
      this.client,
      this.tableName,
      {
        Key: { pk: `${velocityKey(person)}#${eventId}` },
        UpdateExpression:
          'SET firstSeenAt = if_not_exists(firstSeenAt, :at), seenCount = if_not_exists(seenCount, :count), updatedAt = :iso',
        ExpressionAttributeValues: { ':at': mine, ':count': Math.min(count, cap), ':iso': iso },
        ReturnValues: 'ALL_NEW',
      },
      VELOCITY_FAILURE,
    );
    const recent = ring.recent instanceof Set ? ring.recent.size : 0;
    if (recent > cap + VELOCITY_SLACK || [...firstSeen.values()].some((at) => at <= now - windowMs)) {
      // Tidy-up only: failing here changes no verdict (the bound above forces one when it matters).
      await this.trimVelocity(person, ring, now, windowMs, cap).catch(() => undefined);
    }
    return Math.min(Number(pinned?.seenCount ?? count), cap);
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
    const failure = 'lifecycle: could not tidy the referrer count';
    const noted = await conditionalUpdate(
      this.client,
      this.tableName,
      {
        Key: key,
        UpdateExpression: 'DELETE recent :drop SET droppedUpTo = :dropped',
        ConditionExpression: 'attribute_not_exists(droppedUpTo) OR droppedUpTo < :dropped',
        ExpressionAttributeValues: { ...values, ':dropped': droppedUpTo },
        ReturnValues: 'NONE',
      },
      failure,
    );
    // A newer time was noted meanwhile: it covers ours.
    if (!noted)
      await conditionalUpdate(
        this.client,
        this.tableName,
        { Key: key, UpdateExpression: 'DELETE recent :drop', ExpressionAttributeValues: values, ReturnValues: 'NONE' },
        failure,
      );
  }

  /** The fact replaces the one held only when its event happened later: a late duplicate of an older event changes nothing. */
  public async noteQualifying(person: string, fact: QualifyingFact, expiresAt: number): Promise<void> {
    await this.tryUpdate(
      {
        Key: { pk: qualifyingKey(person) },
        UpdateExpression: 'SET fact = :fact, occurredAt = :at, #ttl = :ttl, updatedAt = :iso',
        ConditionExpression: 'attribute_not_exists(occurredAt) OR occurredAt < :at',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':fact': fact, ':at': fact.occurredAt, ':ttl': expiresAt, ':iso': new Date(this.now()).toISOString() },
      },
      'ledger: could not note the qualifying event',
    );
  }

  public async qualifying(person: string): Promise<QualifyingFact | undefined> {
    const item = await this.getItem(qualifyingKey(person));
    return item?.fact as QualifyingFact | undefined;
  }

  public async markPersonEvent(eventId: string, role: 'qualify' | 'revoke', expiresAt: number): Promise<void> {
    await this.tryUpdate(
      {
        Key: { pk: personEventKey(eventId) },
        UpdateExpression: 'SET #role = :role, #ttl = :ttl, handledAt = if_not_exists(handledAt, :iso)',
        ExpressionAttributeNames: { '#role': 'role', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':role': role, ':ttl': expiresAt, ':iso': new Date(this.now()).toISOString() },
      },
      'ledger: could not record the person event',
    );
  }

  public async personEventMarked(eventId: string): Promise<boolean> {
    return (await this.getItem(personEventKey(eventId))) !== undefined;
  }

  /** One conditional update: true if it was written, false if its condition refused it. */
  private async tryUpdate(input: Omit<UpdateCommandInput, 'TableName'>, failure: string): Promise<boolean> {
    return (await conditionalUpdate(this.client, this.tableName, input, failure)) !== undefined;
  }

  private getItem(pk: string): Promise<Record<string, unknown> | undefined> {
    return readItem(this.client, this.tableName, pk, 'ledger: could not read the ledger');
  }
}

/**
 * A Change as one UpdateItem: every attribute by placeholder (`status` is a reserved word), the
 * adapter's clock for NOW_ISO / NOW_MS, `updatedAt` always, and its conditions after `fence`.
 */
function expression(change: Change, now: number, fence: string, fenceValues: Record<string, unknown>) {
  const iso = new Date(now).toISOString();
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ...fenceValues, ':iso': iso };
  const name = (attribute: string) => {
    const placeholder = `#${attribute}`;
    names[placeholder] = attribute;
    return placeholder;
  };
  let next = 0;
  const value = (raw: unknown) => {
    const placeholder = `:v${next++}`;
    values[placeholder] = raw === NOW_ISO ? iso : raw === NOW_MS ? now : raw;
    return placeholder;
  };
  const set = [
    'updatedAt = :iso',
    ...Object.entries(change.set ?? {}).map(([attribute, raw]) => `${name(attribute)} = ${value(raw)}`),
    ...Object.entries(change.setIfAbsent ?? {}).map(
      ([attribute, raw]) => `${name(attribute)} = if_not_exists(${name(attribute)}, ${value(raw)})`,
    ),
  ];
  const remove = [...(change.remove ?? []).map(name), ...(change.freeLease ? LEASE : [])];
  const add = Object.entries(change.add ?? {}).map(([attribute, raw]) => `${name(attribute)} ${value(raw)}`);
  const conditions = [
    // Parenthesised: a fence with an OR must not bind to the conditions after it.
    `(${fence})`,
    ...Object.entries(change.expect ?? {}).map(([attribute, raw]) => `${name(attribute)} = ${value(raw)}`),
    ...(change.present ?? []).map((attribute) => `attribute_exists(${name(attribute)})`),
    ...Object.entries(change.olderThan ?? {}).map(
      ([attribute, ms]) => `(attribute_not_exists(${name(attribute)}) OR ${name(attribute)} < ${value(now - ms)})`,
    ),
  ];
  if (fence.includes('#status')) names['#status'] = 'status';
  return {
    UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}${add.length > 0 ? ` ADD ${add.join(', ')}` : ''}`,
    ConditionExpression: conditions.join(' AND '),
    ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
    ExpressionAttributeValues: values,
  };
}

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

const LEASE = ['leaseOwner', 'leaseExpiresAt'];
