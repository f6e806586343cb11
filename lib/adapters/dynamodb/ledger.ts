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
import {
  beginChange,
  CLOSED,
  closedOutcome,
  LEASE,
  LeaseLostError,
  NOW_ISO,
  NOW_MS,
  type BeginInput,
  type BeginResult,
  type Change,
  type Counter,
  type LedgerPort,
  type LedgerRecord,
  type LedgerStatus,
  type QualifyingFact,
} from '../../domain/ledger-port';
import type { Referral } from '../../domain/referral';
import { BudgetCounter } from './budget-counter';
import { ReferralCodeReader } from './referral-codes';
import type { ReferralCodeLookup } from '../../domain/referral-codes';
import { ledgerTable, type Item, type LedgerTable } from './conditional';
import type { DynamoDBDocumentClient, UpdateCommandInput } from '@aws-sdk/lib-dynamodb';

// The domain's types (lib/domain/ledger-port.ts, lifecycle/record.ts), re-exported for the code that builds a Ledger.
export { ROLES } from '../../domain/ledger-port';
export type { Decision, LedgerPort, LedgerRecord, LedgerStatus, Role } from '../../domain/ledger-port';
export type { LifecycleRecord } from '../../domain/lifecycle/record';
export { budgetPeriods, referralCents } from '../../domain/lifecycle/record';

export const referralKey = (eventId: string): string => `referral#${eventId}`;
/** A counter's item (see count), `<kind>#<person>`: a canonical email, or a person key (lib/domain/qualify.ts `personKeys`). */
const counterKey = (counter: PersonCounter): string => `${counter.kind}#${counter.person}`;
type PersonCounter = Extract<Counter, { person: string }>;
/** One item per person key: the latest qualifying event heard for it (with a TTL). */
const qualifyingKey = (person: string): string => `qualifying#${person}`;
/** One item per person event handled (with a TTL): the catch-up queues only events without it. */
export const personEventKey = (eventId: string): string => `person-event#${eventId.toLowerCase()}`;
const velocityKey = (person: string): string => `velocity#${person}`;
const VELOCITY_FAILURE = 'lifecycle: could not count the referrer';
/** Sightings a referrer's item may hold past `cap` before they are tidied. */
const VELOCITY_SLACK = 32;

/**
 * `#status IN (...)` over `statuses` (at most 100), each a placeholder named from `prefix`; `NOT (...)` negates it
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html).
 */
function statusIn(statuses: readonly LedgerStatus[], prefix: string): [string, Item] {
  const values = Object.fromEntries(statuses.map((status, i) => [`:${prefix}${i}`, status]));
  return [`#status IN (${Object.keys(values).join(', ')})`, values];
}

/**
 * Who may write a referral outside the lease-fenced steps (`begin` taking it up, `fail`
 * recording a failure): it is new, or neither CLOSED nor HELD before its `releaseAt` (epoch ms),
 * and its lease is free, expired or already `owner`'s.
 */
function openAndFree(now: number, owner: string): [string, Item] {
  const [closed, values] = statusIn(CLOSED, 'closed');
  return [
    `attribute_not_exists(pk) OR (NOT (${closed}) AND (#status <> :held OR releaseAt <= :now) AND ` +
      '(attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :now OR leaseOwner = :owner))',
    { ...values, ':held': 'HELD', ':now': now, ':owner': owner },
  ];
}

export class Ledger implements LedgerPort {
  private readonly table: LedgerTable;
  private readonly budgets: BudgetCounter;
  /** The worker's reads of the referral-code items, which live in this table (./referral-codes.ts). */
  public readonly codes: ReferralCodeLookup;

  public constructor(
    client: DynamoDBDocumentClient,
    tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    this.table = ledgerTable(client, tableName);
    this.budgets = new BudgetCounter(this.table, now);
    this.codes = new ReferralCodeReader(this.table);
  }

  /**
   * Creates the record or takes it over, in one conditional write (openAndFree);
   * `if_not_exists` keeps codes written by an earlier attempt, so every retry reuses them.
   */
  public async begin(referral: Referral, input: BeginInput): Promise<BeginResult> {
    const now = this.now();
    const change = expression(beginChange(referral, input), now, ...openAndFree(now, input.owner));
    const acquired = await this.update(referral.eventId, change, 'ledger: could not start the referral');
    if (acquired) return { outcome: 'acquired', record: acquired };
    const record = await this.get(referral.eventId);
    return (record && closedOutcome(record, now)) ?? { outcome: 'busy', record };
  }

  /**
   * Every step after `begin` is fenced on the lease: if another worker took the referral over
   * (ours expired), our write fails instead of racing theirs, and we stop.
   */
  public async write(eventId: string, owner: string, change: Change): Promise<LedgerRecord> {
    const update = expression(change, this.now(), 'leaseOwner = :owner', { ':owner': owner });
    const written = await this.update(eventId, update, `ledger: could not record progress (${change.step})`);
    if (!written) throw new LeaseLostError(eventId);
    return written;
  }

  public move(eventId: string, from: readonly LedgerStatus[], change: Change): Promise<LedgerRecord | undefined> {
    return this.update(eventId, expression(change, this.now(), ...statusIn(from, 'from')), `ledger: could not ${change.step}`);
  }

  /**
   * A permanent failure (or retries exhausted): the message is on its way to the DLQ, and a redrive
   * may take the record up again. Unlike the steps this needs no lease of ours (openAndFree): a
   * config error can fail a referral before it ever began.
   */
  public async fail(eventId: string, owner: string, reason: string, message: string): Promise<boolean> {
    const now = this.now();
    const change: Change = {
      step: 'fail',
      set: { status: 'FAILED', eventId, failureReason: reason, lastError: message, failedAt: NOW_ISO },
      setIfAbsent: { createdAt: NOW_ISO },
      // Out of the lifecycle index too (a released referral that failed before it left it): a
      // FAILED record waits for a redrive, not the releaser, and must not crowd its reads. Never a
      // parked one: openAndFree refuses HELD and REVIEW records.
      remove: ['lifecycleQueue', 'lifecycleAt'],
      freeLease: true,
    };
    const update = expression(change, now, ...openAndFree(now, owner));
    return (await this.update(eventId, update, 'ledger: could not record the failure')) !== undefined;
  }

  public async get(eventId: string): Promise<LedgerRecord | undefined> {
    return (await this.getItem(referralKey(eventId))) as LedgerRecord | undefined;
  }

  /**
   * Redeemer, person key: one item naming the referral that holds it; the same referral may claim
   * again, `takeOver` names a refused referral's leftover claim. Referrer: the counter and the set
   * of counted referrals change in one conditional write, so concurrent referrals cannot overshoot
   * the cap and a retry is not counted again; the set holds at most `cap` ids and
   * MAX_REWARDS_PER_REFERRER is at most 1000 (lib/infra/config.ts): ~40 KB, far inside an item's
   * 400 KB. Budget: ./budget-counter.ts, a marker per referral, exact past any number of them.
   */
  public async count(counter: Counter, eventId: string, options: { limit?: number; takeOver?: string } = {}): Promise<boolean> {
    const { limit, takeOver } = options;
    if (counter.kind === 'budget') {
      if (limit !== undefined && counter.cents > limit) return false;
      return (await this.budgets.change(counter.period, eventId, true, counter.cents, limit)) !== 'refused';
    }
    if (counter.kind !== 'referrer') {
      return this.counted(
        counter,
        eventId,
        {
          UpdateExpression: 'SET eventId = :eventId, claimedAt = :iso',
          ConditionExpression: `attribute_not_exists(eventId) OR eventId = :eventId${takeOver ? ' OR eventId = :stale' : ''}`,
          ExpressionAttributeValues: takeOver ? { ':stale': takeOver } : {},
        },
        'ledger: could not claim the redeemer',
      );
    }
    const counted = await this.counted(
      counter,
      eventId,
      {
        UpdateExpression: 'ADD rewardCount :one, eventIds :ids SET updatedAt = :iso',
        ConditionExpression: `attribute_not_exists(pk) OR (${limit === undefined ? '' : 'rewardCount < :cap AND '}NOT contains(eventIds, :eventId))`,
        ExpressionAttributeValues: { ':one': 1, ':ids': new Set([eventId]), ...(limit === undefined ? {} : { ':cap': limit }) },
      },
      'ledger: could not count the referrer',
    );
    // Refused: either the cap is reached, or this referral was counted by an earlier attempt.
    return counted || (await this.holders(counter)).includes(eventId);
  }

  public async uncount(counter: Counter, eventId: string): Promise<boolean> {
    if (counter.kind === 'budget') return (await this.budgets.change(counter.period, eventId, false, counter.cents)) === 'changed';
    if (counter.kind !== 'referrer') {
      return this.counted(
        counter,
        eventId,
        { UpdateExpression: 'REMOVE eventId, claimedAt SET releasedAt = :iso', ConditionExpression: 'eventId = :eventId' },
        'ledger: could not release the redeemer',
      );
    }
    return this.counted(
      counter,
      eventId,
      {
        UpdateExpression: 'DELETE eventIds :ids ADD rewardCount :minusOne SET updatedAt = :iso',
        ConditionExpression: 'contains(eventIds, :eventId)',
        ExpressionAttributeValues: { ':ids': new Set([eventId]), ':minusOne': -1 },
      },
      'ledger: could not release the referrer slot',
    );
  }

  public async holders(counter: Counter): Promise<string[]> {
    if (counter.kind === 'budget') return [];
    const item = await this.getItem(counterKey(counter));
    if (counter.kind !== 'referrer') return typeof item?.eventId === 'string' ? [item.eventId] : [];
    return item?.eventIds instanceof Set ? [...(item.eventIds as Set<string>)] : [];
  }

  public spent(period: string): Promise<{ cents: number; referrals: number }> {
    return this.budgets.spent(period);
  }

  /**
   * Capped (the guard needs only "more than N"), so bounded at any volume: the referrer's item
   * (`velocity#<person>`) keeps the latest `cap` sightings (`<epoch ms>:<eventId>`, a few more
   * between tidy-ups) and the newest time it ever dropped (`droppedUpTo`); a referral whose window
   * reaches back past that time is answered `cap` (some of its window was dropped because `cap`
   * newer ones existed: conservative, it goes to review). The first answer is pinned on the
   * referral's own marker (`velocity#<person>#<eventId>`), so a retry gets the same one whatever
   * arrived since.
   */
  public async velocity(person: string, eventId: string, windowMs: number, cap: number): Promise<number> {
    const now = this.now();
    const iso = this.iso();
    const most = cap + VELOCITY_SLACK * 8;
    const add = (bounded: boolean) =>
      this.table.update(
        velocityKey(person),
        {
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
      await this.trimVelocity(person, sightings(await this.getItem(velocityKey(person))), now, windowMs, cap);
      ring = await add(false);
    }
    const seen = sightings(ring);
    // Each referral's first sighting: a retry adds a later entry for the same referral, which does not count.
    const firstSeen = new Map<string, number>();
    for (const { at, id } of seen) firstSeen.set(id, Math.min(at, firstSeen.get(id) ?? at));
    const mine = firstSeen.get(eventId) ?? now;
    let count = [...firstSeen.values()].filter((at) => at <= mine && at > mine - windowMs).length;
    if (Number(ring?.droppedUpTo ?? Number.NEGATIVE_INFINITY) > mine - windowMs) count = cap;
    const pinned = await this.table.update(
      `${velocityKey(person)}#${eventId}`,
      {
        UpdateExpression:
          'SET firstSeenAt = if_not_exists(firstSeenAt, :at), seenCount = if_not_exists(seenCount, :count), updatedAt = :iso',
        ExpressionAttributeValues: { ':at': mine, ':count': Math.min(count, cap), ':iso': iso },
        ReturnValues: 'ALL_NEW',
      },
      VELOCITY_FAILURE,
    );
    if (seen.length > cap + VELOCITY_SLACK || [...firstSeen.values()].some((at) => at <= now - windowMs)) {
      // Tidy-up only: failing here changes no verdict (the bound above forces one when it matters).
      await this.trimVelocity(person, seen, now, windowMs, cap).catch(() => undefined);
    }
    return Math.min(Number(pinned?.seenCount ?? count), cap);
  }

  /** Drops sightings older than the window and all but the latest `cap`, noting the newest time dropped. */
  private async trimVelocity(person: string, seen: Sighting[], now: number, windowMs: number, cap: number): Promise<void> {
    const drop = [...seen].sort((a, b) => b.at - a.at).filter(({ at }, i) => i >= cap || at <= now - windowMs);
    if (drop.length === 0) return;
    const droppedUpTo = Math.max(...drop.map(({ at }) => at));
    const values = { ':drop': new Set(drop.map(({ entry }) => entry)) };
    const failure = 'lifecycle: could not tidy the referrer count';
    const noted = await this.table.update(
      velocityKey(person),
      {
        UpdateExpression: 'DELETE recent :drop SET droppedUpTo = :dropped',
        ConditionExpression: 'attribute_not_exists(droppedUpTo) OR droppedUpTo < :dropped',
        ExpressionAttributeValues: { ...values, ':dropped': droppedUpTo },
      },
      failure,
    );
    // A newer time was noted meanwhile: it covers ours.
    if (!noted)
      await this.table.update(velocityKey(person), { UpdateExpression: 'DELETE recent :drop', ExpressionAttributeValues: values }, failure);
  }

  /** The fact replaces the one held only when its event happened later: a late duplicate of an older event changes nothing. */
  public async noteQualifying(person: string, fact: QualifyingFact, expiresAt: number): Promise<void> {
    await this.table.update(
      qualifyingKey(person),
      {
        UpdateExpression: 'SET fact = :fact, occurredAt = :at, #ttl = :ttl, updatedAt = :iso',
        ConditionExpression: 'attribute_not_exists(occurredAt) OR occurredAt < :at',
        ExpressionAttributeNames: { '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':fact': fact, ':at': fact.occurredAt, ':ttl': expiresAt, ':iso': this.iso() },
      },
      'ledger: could not note the qualifying event',
    );
  }

  public async qualifying(person: string): Promise<QualifyingFact | undefined> {
    return (await this.getItem(qualifyingKey(person)))?.fact as QualifyingFact | undefined;
  }

  public async markPersonEvent(eventId: string, role: 'qualify' | 'revoke', expiresAt: number): Promise<void> {
    await this.table.update(
      personEventKey(eventId),
      {
        UpdateExpression: 'SET #role = :role, #ttl = :ttl, handledAt = if_not_exists(handledAt, :iso)',
        ExpressionAttributeNames: { '#role': 'role', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':role': role, ':ttl': expiresAt, ':iso': this.iso() },
      },
      'ledger: could not record the person event',
    );
  }

  public async personEventMarked(eventId: string): Promise<boolean> {
    return (await this.getItem(personEventKey(eventId))) !== undefined;
  }

  /** A referral's record, written by one conditional update: the new record, undefined if its condition refused it. */
  private update(eventId: string, input: ReturnType<typeof expression>, failure: string): Promise<LedgerRecord | undefined> {
    return this.table.update(referralKey(eventId), { ...input, ReturnValues: 'ALL_NEW' }, failure) as Promise<LedgerRecord | undefined>;
  }

  /** One conditional write on a counter's item, with `:eventId` and `:iso` (now) given: false if its condition refused it. */
  private async counted(counter: PersonCounter, eventId: string, input: Omit<UpdateCommandInput, 'TableName' | 'Key'>, failure: string) {
    const values = { ':eventId': eventId, ':iso': this.iso(), ...input.ExpressionAttributeValues };
    return (await this.table.update(counterKey(counter), { ...input, ExpressionAttributeValues: values }, failure)) !== undefined;
  }

  private getItem(pk: string): Promise<Item | undefined> {
    return this.table.read(pk, 'ledger: could not read the ledger');
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

/**
 * A Change as one UpdateItem: every attribute by placeholder (`status` is a reserved word), the
 * adapter's clock for NOW_ISO / NOW_MS, `updatedAt` always, and its conditions after `fence`.
 */
function expression(change: Change, now: number, fence: string, fenceValues: Item) {
  const iso = new Date(now).toISOString();
  const names: Record<string, string> = {};
  const values: Item = { ...fenceValues, ':iso': iso };
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

interface Sighting {
  entry: string;
  at: number;
  id: string;
}

/** A referrer's sightings, each `<epoch ms>:<eventId>`. */
function sightings(ring: Item | undefined): Sighting[] {
  return [...(ring?.recent instanceof Set ? (ring.recent as Set<string>) : [])].map((entry) => {
    const colon = entry.indexOf(':');
    return { entry, at: Number(entry.slice(0, colon)), id: entry.slice(colon + 1) };
  });
}
