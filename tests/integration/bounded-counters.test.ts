import { randomUUID } from 'node:crypto';
import { DeleteTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../lib/infra/aws-clients';
import { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { loadInfraDefinitions } from '../../local/infra';
import { createLedgerTable } from '../../local/resources';
import { migrateLedger } from '../../ops/migrate';

/**
 * The lifecycle's counters on dynalite, past the volumes where one item per period or per referrer
 * outgrew DynamoDB's 400 KB, and across crashes between their writes (dynalite, like DynamoDB
 * without transactions, changes one item per write). The shared semantics are in
 * tests/support/ledger-contract.ts; these are what only the DynamoDB layout can get wrong.
 */
const dynamo = new DynamoDBClient({
  endpoint: process.env.TEST_DYNAMODB_ENDPOINT,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});
const ddb = documentClient(dynamo);
const tableName = `referral-rewards-counters-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  await createLedgerTable(dynamo, loadInfraDefinitions(), tableName);
});

afterAll(async () => {
  await dynamo.send(new DeleteTableCommand({ TableName: tableName }));
  dynamo.destroy();
});

type Command = { input?: { Key?: { pk?: string }; UpdateExpression?: string } };

/**
 * A client on which each command `crashes` picks dies: before it reaches the table ('before') or
 * after it was written, its answer lost ('after'), as a Lambda killed mid-call would leave it.
 */
function crashingClient(crashes: (command: Command) => 'before' | 'after' | undefined): DynamoDBDocumentClient {
  const send = ddb.send.bind(ddb) as (command: Command) => Promise<unknown>;
  return Object.assign(Object.create(ddb) as DynamoDBDocumentClient, {
    send: async (command: Command) => {
      const crash = crashes(command);
      if (crash === 'before') throw Object.assign(new Error('simulated crash before the write'), { name: 'TimeoutError' });
      const result = await send(command);
      if (crash === 'after') throw Object.assign(new Error('simulated crash after the write'), { name: 'TimeoutError' });
      return result;
    },
  });
}

const once = (match: (command: Command) => boolean, when: 'before' | 'after') => {
  let done = false;
  return (command: Command) => {
    if (done || !match(command)) return undefined;
    done = true;
    return when;
  };
};

const isTotalWrite = (command: Command) => /^SET version/.test(command.input?.UpdateExpression ?? '');
const isMarkerWrite = (command: Command) => /^SET counted/.test(command.input?.UpdateExpression ?? '');
const isPendingClear = (command: Command) => /^REMOVE pending/.test(command.input?.UpdateExpression ?? '');

/** An item's stored size, near enough to DynamoDB's rule (names plus values) to compare with 400 KB. */
async function itemBytes(pk: string): Promise<number> {
  const { Item } = await dynamo.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: pk } }, ConsistentRead: true }));
  return Buffer.byteLength(JSON.stringify(Item ?? {}));
}

/** The changes a period's total holds that their markers do not yet. */
async function pendingChanges(period: string): Promise<unknown> {
  return (await ddb.send(new GetCommand({ TableName: tableName, Key: { pk: `budget#${period}` }, ConsistentRead: true }))).Item?.pending;
}

describe('budget counters on DynamoDB', () => {
  const ledger = new Ledger(ddb, tableName);
  let period: string;

  beforeEach(() => {
    period = `day#counters-${randomUUID()}`;
  });

  it("counts a referral once when its attempt dies after the total's write, its answer lost", async () => {
    // Prepare
    const eventId = randomUUID();
    const crashing = new Ledger(crashingClient(once(isTotalWrite, 'after')), tableName);
    await expect(crashing.count({ kind: 'budget', period: period, cents: 5_000 }, eventId, { limit: 20_000 })).rejects.toThrow();

    // Act: the retry
    const retried = await ledger.count({ kind: 'budget', period: period, cents: 5_000 }, eventId, { limit: 20_000 });

    // Assess
    expect(retried).toBe(true);
    expect(await ledger.spent(period)).toEqual({ cents: 5_000, referrals: 1 });
    expect(await pendingChanges(period)).toEqual({});
  });

  it('returns a share once when its attempt dies between the marker and clearing its change', async () => {
    // Prepare
    const eventId = randomUUID();
    await ledger.count({ kind: 'budget', period: period, cents: 5_000 }, eventId, { limit: 20_000 });
    const crashing = new Ledger(crashingClient(once(isPendingClear, 'before')), tableName);
    await expect(crashing.uncount({ kind: 'budget', period: period, cents: 5_000 }, eventId)).rejects.toThrow();

    // Act: the operator runs the command again, twice
    const again = [
      await ledger.uncount({ kind: 'budget', period: period, cents: 5_000 }, eventId),
      await ledger.uncount({ kind: 'budget', period: period, cents: 5_000 }, eventId),
    ];

    // Assess
    expect(again).toEqual([false, false]);
    expect(await ledger.spent(period)).toEqual({ cents: 0, referrals: 0 });
    expect(await pendingChanges(period)).toEqual({});
  });

  it("finishes other referrals' changes left over by crashes a minute earlier, so the period's item stays small", async () => {
    // Prepare: twelve referrals whose attempts died before their markers were written, never retried
    const crashed = Array.from({ length: 12 }, () => randomUUID());
    const crashing = new Ledger(
      crashingClient((command) => (isMarkerWrite(command) ? 'before' : undefined)),
      tableName,
    );
    for (const id of crashed) await expect(crashing.count({ kind: 'budget', period: period, cents: 100 }, id)).rejects.toThrow();
    const bytesWithLeftovers = await itemBytes(`budget#${period}`);

    // Act: another referral's change, a minute later
    await new Ledger(ddb, tableName, () => Date.now() + 61_000).count({ kind: 'budget', period: period, cents: 100 }, randomUUID());
    const pendingAfter = await pendingChanges(period);
    const recountedAfterFinish = await Promise.all(crashed.map((id) => ledger.count({ kind: 'budget', period: period, cents: 100 }, id)));

    // Assess
    expect(pendingAfter).toEqual({});
    expect(recountedAfterFinish.every(Boolean)).toBe(true);
    expect(await ledger.spent(period)).toEqual({ cents: 1_300, referrals: 13 });
    expect(await itemBytes(`budget#${period}`)).toBeLessThan(bytesWithLeftovers);
  });

  it('counts a period the previous release counted (one set of event ids), once migrated, without counting its referrals twice', async () => {
    // Prepare: the set, folded into markers by `npm run ops -- migrate`
    const [old, alsoOld, fresh] = [randomUUID(), randomUUID(), randomUUID()];
    await ddb.send(
      new PutCommand({ TableName: tableName, Item: { pk: `budget#${period}`, spentCents: 10_000, eventIds: new Set([old, alsoOld]) } }),
    );
    await migrateLedger(ddb, tableName, { dryRun: false });

    // Act
    const recounted = await ledger.count({ kind: 'budget', period: period, cents: 5_000 }, old);
    const returned = [
      await ledger.uncount({ kind: 'budget', period: period, cents: 5_000 }, alsoOld),
      await ledger.uncount({ kind: 'budget', period: period, cents: 5_000 }, alsoOld),
    ];
    const counted = await ledger.count({ kind: 'budget', period: period, cents: 5_000 }, fresh, { limit: 10_000 });

    // Assess
    expect([recounted, ...returned, counted]).toEqual([true, true, false, true]);
    expect(await ledger.spent(period)).toEqual({ cents: 10_000, referrals: 2 });
  });

  it('counts one period past 20,000 referrals exactly under racing workers, its item staying under 1 KB', async () => {
    // Prepare: 20,000 referrals counted, their markers and the total as the counter leaves them (written in
    // bulk: through the counter they take ~6 ms each on dynalite, ~120 s; COUNTER_SCALE=20500 does that instead)
    const seeded = Number(process.env.COUNTER_SCALE ?? 0) > 0 ? [] : Array.from({ length: 20_000 }, () => randomUUID());
    for (let i = 0; i < seeded.length; i += 25) {
      const items = seeded
        .slice(i, i + 25)
        .map((id) => ({ PutRequest: { Item: { pk: `budget#${period}#${id}`, counted: true, seq: 1, cents: 5_000 } } }));
      await ddb.send(new BatchWriteCommand({ RequestItems: { [tableName]: items } }));
    }
    if (seeded.length > 0) {
      await ddb.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            pk: `budget#${period}`,
            spentCents: seeded.length * 5_000,
            referrals: seeded.length,
            version: seeded.length,
            pending: {},
          },
        }),
      );
    }
    for (let i = 0; i < Number(process.env.COUNTER_SCALE ?? 0); i++)
      await ledger.count({ kind: 'budget', period: period, cents: 5_000 }, randomUUID());
    const before = await ledger.spent(period);
    const small = `day#counters-${randomUUID()}`;
    for (let i = 0; i < 100; i++) await ledger.count({ kind: 'budget', period: small, cents: 5_000 }, randomUUID());
    const limit = (before.referrals + 250) * 5_000;
    const started = Date.now();

    // Act: four workers count 300 more against room for 250, then 100 counted ones are returned, twice
    const fresh = Array.from({ length: 300 }, () => randomUUID());
    const counted = await inTurns(fresh, 4, (id) => ledger.count({ kind: 'budget', period: period, cents: 5_000 }, id, { limit: limit }));
    const toReturn = fresh.filter((_, i) => counted[i]).slice(0, 100);
    const returned = await inTurns([...toReturn, ...toReturn], 4, (id) =>
      ledger.uncount({ kind: 'budget', period: period, cents: 5_000 }, id),
    );
    const elapsed = Date.now() - started;

    // Assess
    expect(before.referrals).toBeGreaterThanOrEqual(20_000);
    expect(counted.filter(Boolean)).toHaveLength(250);
    expect(returned.filter(Boolean)).toHaveLength(100);
    expect(await ledger.spent(period)).toEqual({ cents: (before.referrals + 150) * 5_000, referrals: before.referrals + 150 });
    const [bytes, smallBytes] = [await itemBytes(`budget#${period}`), await itemBytes(`budget#${small}`)];
    expect(bytes).toBeLessThan(1_024);
    expect(bytes - smallBytes).toBeLessThan(16);
    console.log(
      `budget counter: 500 changes past ${before.referrals} referrals by 4 workers in ${elapsed} ms; item ${bytes} bytes (${smallBytes} at 100 referrals)`,
    );
  }, 600_000);
});

/** Runs `work` over `items` with `workers` at once, answers in order. */
async function inTurns<T, R>(items: T[], workers: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const answers: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < items.length) {
        const i = next++;
        answers[i] = await work(items[i]!);
      }
    }),
  );
  return answers;
}

describe('referrer velocity on DynamoDB', () => {
  it("answers a referrer past 10,000 referrals within the window, its item staying bounded by the guard's N", async () => {
    // Prepare: REVIEW_REFERRER_VELOCITY=5/24h asks "more than 5", so the cap is 6
    const ledger = new Ledger(ddb, tableName);
    const person = `busy-${randomUUID()}@example.com`;
    const total = Number(process.env.VELOCITY_SCALE ?? 10_200);
    const started = Date.now();
    const answers: number[] = [];

    // Act
    for (let i = 0; i < total; i++) answers.push(await ledger.velocity(person, randomUUID(), 86_400_000, 6));
    const elapsed = Date.now() - started;

    // Assess
    expect(answers.slice(0, 6)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(answers.slice(6).every((answer) => answer === 6)).toBe(true);
    expect(await itemBytes(`velocity#${person}`)).toBeLessThan(4_096);
    console.log(`velocity: ${total} referrals by one referrer in ${elapsed} ms (${(elapsed / total).toFixed(2)} ms each)`);
  }, 600_000);
});
