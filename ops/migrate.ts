/**
 * `npm run ops -- migrate`: the one pass that rewrites ledger items stored by earlier releases into
 * today's shape, run once before deploying the release that stopped reading the old shapes
 * (README "Upgrading"). What it rewrites, and into what:
 *
 *   referral#<id>      `expiresOn` (the one date both rewards were asked for, before per-reward
 *                      expiry) → `<role>ExpiresOn` beside each recorded card that has none;
 *                      `heldAt` / `reviewSince` → dropped (`parkedAt`, written in the same write,
 *                      says when; a record without it is refused and listed); `budgetCents` → dropped
 *                      (the reward fixed at begin, `rewardAmount`, says it; copied into it where
 *                      that is missing; a record where the two differ is refused and listed);
 *                      no `rewardType` on a begun record → `gift_card` (the only kind there was);
 *                      no `distinctId` on a parked record → its parked message's.
 *   budget#<period>    `eventIds`, the set of referrals counted before per-referral markers →
 *                      one marker each (`counted`, `seq` 0, `cents`), then the set folded into
 *                      `referrals` and removed.
 *
 * Each item is rewritten by ONE conditional write, conditioned on the old shape it was read with
 * (every attribute it reads or derives from unchanged, every one it adds still absent, and its
 * `updatedAt`): a worker's write in between refuses it, and the item is left for the next run.
 * A budget period's markers are written first, each only where none exists, with `seq` 0 so any
 * change a worker makes to that referral (seq ≥ 1) overrides it; the total's write is on the
 * counter's `version`, like every change of it (lib/adapters/dynamodb/budget-counter.ts).
 * Resumable and idempotent: it only finds items still in an old shape, so a rerun after a crash
 * or a refusal carries on and a rerun after success changes nothing. Prints counts and event ids
 * (PostHog uuids), never an email or a code.
 */
import { GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../lib/adapters/dynamodb/conditional';
import { budgetMarkerKey } from '../lib/adapters/dynamodb/budget-counter';
import { posthogDistinctId, ROLES } from '../lib/domain/ledger-port';
import { referralCents } from '../lib/domain/lifecycle/record';

export type Rewrite = 'expiresOn' | 'heldAt' | 'reviewSince' | 'budgetCents' | 'rewardType' | 'distinctId' | 'budgetEventIds';
export const REWRITES: readonly Rewrite[] = [
  'expiresOn',
  'heldAt',
  'reviewSince',
  'budgetCents',
  'rewardType',
  'distinctId',
  'budgetEventIds',
];

export interface MigrateReport {
  dryRun: boolean;
  /** Items the Scan read (the whole table), and those of them in an old shape. */
  scanned: number;
  oldShape: number;
  /** Written in today's shape (with --dry-run: would be). */
  migrated: number;
  /** Per old shape: items that had it and were (would be) rewritten. */
  rewrites: Record<Rewrite, number>;
  /** Budget markers written for referrals of an old set (with --dry-run: the referrals in old sets). */
  markers: number;
  /** Changed by a worker between the read and the write: untouched, for the next run. */
  leftForNextRun: number;
  /** Items the pass will not rewrite, by reason, with their ids (a referral's event id, a budget's period). */
  refused: { id: string; reason: string }[];
}

export interface MigrateOptions {
  dryRun: boolean;
  /** Items rewritten at once (default 8): the table's on-demand capacity is shared with the workers. */
  concurrency?: number;
  now?: () => number;
  onProgress?: (line: string) => void;
}

type Item = Record<string, unknown>;

/**
 * Only the items some rewrite applies to come back; the Scan still reads, and bills, the whole
 * table, a page (up to 1 MB read) at a time. A Scan's filter may name the key (`pk`): only a
 * Query's may not (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html).
 */
const OLD_SHAPES =
  '(begins_with(pk, :referral) AND (attribute_exists(expiresOn) OR attribute_exists(heldAt) OR attribute_exists(reviewSince) OR ' +
  'attribute_exists(budgetCents) OR (attribute_exists(customerioEventId) AND attribute_not_exists(rewardType)) OR ' +
  '(attribute_exists(parkedMessage) AND attribute_not_exists(distinctId)))) OR ' +
  '(begins_with(pk, :budget) AND attribute_exists(eventIds))';

export async function migrateLedger(ddb: DynamoDBDocumentClient, tableName: string, options: MigrateOptions): Promise<MigrateReport> {
  const now = options.now ?? Date.now;
  const report: MigrateReport = {
    dryRun: options.dryRun,
    scanned: 0,
    oldShape: 0,
    migrated: 0,
    rewrites: Object.fromEntries(REWRITES.map((rewrite) => [rewrite, 0])) as Record<Rewrite, number>,
    markers: 0,
    leftForNextRun: 0,
    refused: [],
  };
  const concurrency = options.concurrency ?? 8;
  let startKey: Item | undefined;
  do {
    const page = await ddb.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: OLD_SHAPES,
        ExpressionAttributeValues: { ':referral': 'referral#', ':budget': 'budget#' },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    report.scanned += page.ScannedCount ?? 0;
    const items = page.Items ?? [];
    report.oldShape += items.length;
    await forEach(items, concurrency, async (item) => {
      const pk = String(item.pk);
      if (pk.startsWith('budget#')) await migrateBudget(ddb, tableName, item, options.dryRun, concurrency, now, report);
      else await migrateReferral(ddb, tableName, item, options.dryRun, now, report);
    });
    startKey = page.LastEvaluatedKey;
    options.onProgress?.(`  … ${report.scanned} items read, ${report.oldShape} in an old shape, ${report.migrated} migrated`);
  } while (startKey);
  return report;
}

/** One referral record's rewrite: what it changes and the conditions that its read still holds. */
export interface ReferralRewrite {
  rewrites: Rewrite[];
  set: Item;
  remove: string[];
  /** Attribute → the value it was read with. */
  unchanged: Item;
  /** Attributes added that must still be absent. */
  absent: string[];
}

/** Pure: today's shape of one referral record, or why it is refused. */
export function referralRewrite(item: Item): ReferralRewrite | { refused: string } {
  const out: ReferralRewrite = { rewrites: [], set: {}, remove: [], unchanged: {}, absent: [] };
  const add = (attribute: string, value: unknown) => {
    out.set[attribute] = value;
    out.absent.push(attribute);
  };
  const drop = (attribute: Rewrite) => {
    out.rewrites.push(attribute);
    out.remove.push(attribute);
    out.unchanged[attribute] = item[attribute];
  };
  if (typeof item.expiresOn === 'string') {
    drop('expiresOn');
    for (const role of ROLES) {
      if (item[`${role}CardId`] && item[`${role}ExpiresOn`] === undefined) {
        out.unchanged[`${role}CardId`] = item[`${role}CardId`];
        add(`${role}ExpiresOn`, item.expiresOn);
      }
    }
  }
  for (const field of ['heldAt', 'reviewSince'] as const) {
    if (item[field] === undefined) continue;
    // Every release wrote parkedAt in the same write; without it the park time would be lost, and
    // adding one would change the state the record reads as (lib/domain/machine.ts).
    if (item.parkedAt === undefined) return { refused: 'parked_without_parkedAt' };
    out.unchanged.parkedAt = item.parkedAt;
    drop(field);
  }
  if (item.budgetCents !== undefined) {
    const cents = Number(item.budgetCents);
    if (typeof item.rewardAmount === 'string') {
      if (referralCents(item.rewardAmount) !== cents) return { refused: 'budget_share_differs_from_reward' };
      out.unchanged.rewardAmount = item.rewardAmount;
    } else {
      if (!Number.isInteger(cents) || cents <= 0 || cents % 2 !== 0) return { refused: 'budget_share_unreadable' };
      add('rewardAmount', (cents / 200).toFixed(2));
    }
    drop('budgetCents');
  }
  if (item.customerioEventId !== undefined && item.rewardType === undefined) {
    out.rewrites.push('rewardType');
    add('rewardType', 'gift_card');
  }
  if (typeof item.parkedMessage === 'string' && item.distinctId === undefined) {
    let parked: { distinctId?: unknown };
    try {
      parked = JSON.parse(item.parkedMessage) as { distinctId?: unknown };
    } catch {
      return { refused: 'parked_message_unreadable' };
    }
    if (typeof item.redeemerEmail !== 'string') return { refused: 'no_redeemer' };
    out.rewrites.push('distinctId');
    out.unchanged.parkedMessage = item.parkedMessage;
    add(
      'distinctId',
      posthogDistinctId({
        distinctId: typeof parked.distinctId === 'string' ? parked.distinctId : undefined,
        redeemerEmail: item.redeemerEmail,
      }),
    );
  }
  return out;
}

async function migrateReferral(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  item: Item,
  dryRun: boolean,
  now: () => number,
  report: MigrateReport,
): Promise<void> {
  const eventId = String(item.pk).slice('referral#'.length);
  const plan = referralRewrite(item);
  if ('refused' in plan) {
    report.refused.push({ id: eventId, reason: plan.refused });
    return;
  }
  if (!dryRun) {
    const names: Record<string, string> = {};
    const values: Item = { ':iso': new Date(now()).toISOString() };
    let next = 0;
    const name = (attribute: string) => ((names[`#${attribute}`] = attribute), `#${attribute}`);
    const value = (raw: unknown) => ((values[`:v${next}`] = raw), `:v${next++}`);
    const set = ['updatedAt = :iso', ...Object.entries(plan.set).map(([attribute, raw]) => `${name(attribute)} = ${value(raw)}`)];
    const conditions = [
      item.updatedAt === undefined ? 'attribute_not_exists(updatedAt)' : `updatedAt = ${value(item.updatedAt)}`,
      ...Object.entries(plan.unchanged).map(([attribute, raw]) => `${name(attribute)} = ${value(raw)}`),
      ...plan.absent.map((attribute) => `attribute_not_exists(${name(attribute)})`),
    ];
    try {
      await ddb.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: item.pk },
          UpdateExpression: `SET ${set.join(', ')}${plan.remove.length > 0 ? ` REMOVE ${plan.remove.map(name).join(', ')}` : ''}`,
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      report.leftForNextRun++;
      return;
    }
  }
  report.migrated++;
  for (const rewrite of plan.rewrites) report.rewrites[rewrite]++;
}

async function migrateBudget(
  ddb: DynamoDBDocumentClient,
  tableName: string,
  total: Item,
  dryRun: boolean,
  concurrency: number,
  now: () => number,
  report: MigrateReport,
): Promise<void> {
  const period = String(total.pk).slice('budget#'.length);
  const ids = total.eventIds instanceof Set ? [...(total.eventIds as Set<unknown>)].map(String) : [];
  if (ids.length === 0) {
    report.refused.push({ id: period, reason: 'budget_event_ids_not_a_set' });
    return;
  }
  if (dryRun) {
    report.markers += ids.length;
    report.migrated++;
    report.rewrites.budgetEventIds++;
    return;
  }
  const iso = new Date(now()).toISOString();
  await forEach(ids, concurrency, async (eventId) => {
    // The referral's share as it was counted (the record's, fixed at begin); without a record the
    // counter's caller supplies it when it uncounts, as it did for the old set.
    const record = (await ddb.send(new GetCommand({ TableName: tableName, Key: { pk: `referral#${eventId}` }, ConsistentRead: true })))
      .Item;
    const cents =
      record?.budgetCents !== undefined
        ? Number(record.budgetCents)
        : typeof record?.rewardAmount === 'string'
          ? referralCents(record.rewardAmount)
          : undefined;
    try {
      await ddb.send(
        new PutCommand({
          TableName: tableName,
          Item: { pk: budgetMarkerKey(period, eventId), counted: true, seq: 0, ...(cents === undefined ? {} : { cents }), updatedAt: iso },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      report.markers++;
    } catch (error) {
      // A marker already there is newer than the set (a worker's change since): it stays.
      if (!isConditionFailure(error)) throw error;
    }
  });
  const version = Number(total.version ?? 0);
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { pk: total.pk },
        UpdateExpression: 'SET version = :next, updatedAt = :iso REMOVE eventIds ADD referrals :folded',
        ConditionExpression: `attribute_exists(eventIds) AND ${version === 0 ? 'attribute_not_exists(version)' : 'version = :version'}`,
        ExpressionAttributeValues: {
          ':next': version + 1,
          ':iso': iso,
          ':folded': ids.length,
          ...(version === 0 ? {} : { ':version': version }),
        },
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    report.leftForNextRun++;
    return;
  }
  report.migrated++;
  report.rewrites.budgetEventIds++;
}

async function forEach<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export function formatMigrate(report: MigrateReport): string {
  const verb = report.dryRun ? 'would migrate' : 'migrated';
  const lines = [
    `${report.dryRun ? 'dry run: nothing written. ' : ''}${report.scanned} items read, ${report.oldShape} in an old shape`,
    `${verb} ${report.migrated} items${report.markers ? `, ${report.markers} budget markers ${report.dryRun ? 'to write' : 'written'}` : ''}`,
    ...REWRITES.filter((rewrite) => report.rewrites[rewrite] > 0).map((rewrite) => `  ${rewrite.padEnd(15)} ${report.rewrites[rewrite]}`),
  ];
  if (report.leftForNextRun > 0)
    lines.push(`${report.leftForNextRun} changed by a worker meanwhile, left for the next run: run migrate again`);
  if (report.refused.length > 0) {
    lines.push(`${report.refused.length} refused (not rewritten; see README "Upgrading"):`);
    for (const { id, reason } of report.refused) lines.push(`  ${id}  ${reason}`);
  }
  if (!report.dryRun && report.leftForNextRun === 0 && report.refused.length === 0) lines.push("the ledger is in today's shape");
  return lines.join('\n');
}
