import { randomUUID } from 'node:crypto';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { PermanentError } from '../../lib/domain/errors';
import { documentClient } from '../../lib/infra/aws-clients';
import { loadInfraDefinitions } from '../../local/infra';
import { createLedgerTable } from '../../local/resources';
import { main, type CliIo } from '../../ops/cli';
import { migrateLedger } from '../../ops/migrate';
import type { Target } from '../../ops/target';

/**
 * `npm run ops -- migrate` on dynalite: every ledger item an earlier release stored in a shape
 * this release no longer reads is rewritten into today's, each by one conditional write that a
 * worker's concurrent write refuses; a rerun changes nothing.
 */
const dynamo = new DynamoDBClient({
  endpoint: process.env.TEST_DYNAMODB_ENDPOINT,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});
const ddb = documentClient(dynamo);
let tableName: string;

beforeEach(async () => {
  tableName = `referral-rewards-migrate-${randomUUID().slice(0, 8)}`;
  await createLedgerTable(dynamo, loadInfraDefinitions(), tableName);
});

afterEach(async () => {
  await dynamo.send(new DeleteTableCommand({ TableName: tableName }));
});

afterAll(() => dynamo.destroy());

const WRITTEN = '2026-11-01T10:00:00.000Z';
const PARKED = '2026-11-01T09:00:00.000Z';

const put = (item: Record<string, unknown>) => ddb.send(new PutCommand({ TableName: tableName, Item: item }));
const item = async (pk: string) => (await ddb.send(new GetCommand({ TableName: tableName, Key: { pk }, ConsistentRead: true }))).Item;
const all = async () =>
  ((await ddb.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }))).Items ?? []).sort((a, b) =>
    String(a.pk).localeCompare(String(b.pk)),
  );
const migrate = (client: DynamoDBDocumentClient = ddb, dryRun = false) => migrateLedger(client, tableName, { dryRun, concurrency: 4 });

/** A referral record as the releases since per-referral rewards wrote it, with `extra` on top. */
function referral(eventId: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    pk: `referral#${eventId}`,
    eventId,
    status: 'COMPLETED',
    decision: 'ACCEPTED',
    referrerEmail: 'referrer@example.com',
    redeemerEmail: 'redeemer@example.com',
    customerEmail: 'redeemer@example.com',
    distinctId: 'ph-redeemer',
    rewardType: 'gift_card',
    rewardAmount: '25.00',
    referrerCode: 'REF-AAAA-BBBB',
    redeemerCode: 'REF-CCCC-DDDD',
    customerioEventId: `cio-${eventId}`,
    attempts: 1,
    createdAt: WRITTEN,
    updatedAt: WRITTEN,
    ...extra,
  };
}

/** A client whose first update of `pk` by the migration is preceded by `meanwhile` (a worker's write racing it). */
function racingClient(pk: string, meanwhile: () => Promise<unknown>): DynamoDBDocumentClient {
  let raced = false;
  const send = ddb.send.bind(ddb) as (command: unknown) => Promise<unknown>;
  return Object.assign(Object.create(ddb) as DynamoDBDocumentClient, {
    send: async (command: unknown) => {
      if (!raced && command instanceof UpdateCommand && command.input.Key?.pk === pk) {
        raced = true;
        await meanwhile();
      }
      return send(command);
    },
  });
}

describe('ops migrate: referral records', () => {
  it('moves the one expiry date of a record begun before per-reward expiry onto each recorded reward', async () => {
    // Prepare
    const eventId = randomUUID();
    await put(
      referral(eventId, {
        expiresOn: '2026-12-31',
        referrerCardId: 'gid://shopify/GiftCard/1',
        redeemerCardId: 'gid://shopify/GiftCard/2',
      }),
    );

    // Act
    const report = await migrate();

    // Assess
    const migrated = await item(`referral#${eventId}`);
    expect(migrated).toMatchObject({ referrerExpiresOn: '2026-12-31', redeemerExpiresOn: '2026-12-31' });
    expect(migrated).not.toHaveProperty('expiresOn');
    expect(report).toMatchObject({ migrated: 1, rewrites: expect.objectContaining({ expiresOn: 1 }) });
  });

  it('drops heldAt and reviewSince, which the park time says', async () => {
    // Prepare
    const [held, inReview] = [randomUUID(), randomUUID()];
    await put(referral(held, { status: 'HELD', parkedAt: PARKED, heldAt: PARKED, releaseAt: 1 }));
    await put(referral(inReview, { status: 'REVIEW', reviewReasons: ['velocity'], parkedAt: PARKED, reviewSince: PARKED }));

    // Act
    await migrate();

    // Assess
    const [afterHeld, afterReview] = [await item(`referral#${held}`), await item(`referral#${inReview}`)];
    expect(afterHeld).toMatchObject({ status: 'HELD', parkedAt: PARKED });
    expect(afterHeld).not.toHaveProperty('heldAt');
    expect(afterReview).toMatchObject({ status: 'REVIEW', parkedAt: PARKED });
    expect(afterReview).not.toHaveProperty('reviewSince');
  });

  it('refuses, and lists, a parked record without the park time that would replace heldAt', async () => {
    // Prepare
    const eventId = randomUUID();
    await put(referral(eventId, { status: 'HELD', heldAt: PARKED, releaseAt: 1 }));

    // Act
    const report = await migrate();

    // Assess
    expect(report.refused).toEqual([{ id: eventId, reason: 'parked_without_parkedAt' }]);
    expect(await item(`referral#${eventId}`)).toMatchObject({ heldAt: PARKED, updatedAt: WRITTEN });
  });

  it('drops budgetCents where the reward fixed at begin says the same, and refuses a record where they differ', async () => {
    // Prepare
    const [same, differs] = [randomUUID(), randomUUID()];
    await put(referral(same, { status: 'HELD', parkedAt: PARKED, budgetCents: 5_000 }));
    await put(referral(differs, { status: 'HELD', parkedAt: PARKED, budgetCents: 9_000 }));

    // Act
    const report = await migrate();

    // Assess
    expect(await item(`referral#${same}`)).not.toHaveProperty('budgetCents');
    expect(await item(`referral#${differs}`)).toMatchObject({ budgetCents: 9_000, updatedAt: WRITTEN });
    expect(report.refused).toEqual([{ id: differs, reason: 'budget_share_differs_from_reward' }]);
  });

  it('gives a record begun before reward types were stored the gift cards it paid', async () => {
    // Prepare
    const eventId = randomUUID();
    const old = referral(eventId, { referrerCardId: 'gid://shopify/GiftCard/1', redeemerCardId: 'gid://shopify/GiftCard/2' });
    delete old.rewardType;
    await put(old);

    // Act
    await migrate();

    // Assess
    expect(await item(`referral#${eventId}`)).toMatchObject({ rewardType: 'gift_card', rewardAmount: '25.00' });
  });

  it('stores the distinct id of a parked record that has none from its parked message', async () => {
    // Prepare
    const eventId = randomUUID();
    const old = referral(eventId, {
      status: 'REVIEW',
      reviewReasons: ['budget'],
      parkedAt: PARKED,
      parkedMessage: JSON.stringify({ v: 1, eventId, distinctId: 'ph-from-the-message' }),
    });
    delete old.distinctId;
    await put(old);

    // Act
    await migrate();

    // Assess
    expect(await item(`referral#${eventId}`)).toMatchObject({ distinctId: 'ph-from-the-message' });
  });

  it("leaves a record a worker wrote between the pass's read and its write for the next run, which migrates it", async () => {
    // Prepare: a worker records its attempt while the pass is on its way
    const eventId = randomUUID();
    await put(referral(eventId, { status: 'HELD', parkedAt: PARKED, heldAt: PARKED, budgetCents: 5_000 }));
    const worker = () =>
      ddb.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: `referral#${eventId}` },
          UpdateExpression: 'SET lastError = :error, updatedAt = :iso ADD attempts :one',
          ExpressionAttributeValues: { ':error': 'Shopify throttled', ':iso': '2026-11-02T00:00:00.000Z', ':one': 1 },
        }),
      );

    // Act
    const first = await migrate(racingClient(`referral#${eventId}`, worker));
    const afterFirst = await item(`referral#${eventId}`);
    const second = await migrate();

    // Assess
    expect(first).toMatchObject({ migrated: 0, leftForNextRun: 1 });
    expect(afterFirst).toMatchObject({ attempts: 2, lastError: 'Shopify throttled', heldAt: PARKED, budgetCents: 5_000 });
    expect(second).toMatchObject({ migrated: 1, leftForNextRun: 0 });
    const final = await item(`referral#${eventId}`);
    expect(final).toMatchObject({ attempts: 2, lastError: 'Shopify throttled', parkedAt: PARKED });
    expect(final).not.toHaveProperty('heldAt');
    expect(final).not.toHaveProperty('budgetCents');
  });
});

describe('ops migrate: budget periods', () => {
  const period = 'day#2026-11-01';

  it("folds a period's set of counted referrals into a marker each, its totals exact for the counter", async () => {
    // Prepare: two referrals counted by the previous release (its set), their records holding the share
    const [first, second, fresh] = [randomUUID(), randomUUID(), randomUUID()];
    await put(referral(first, { status: 'HELD', parkedAt: PARKED }));
    await put(referral(second, { status: 'HELD', parkedAt: PARKED }));
    await put({ pk: `budget#${period}`, spentCents: 10_000, eventIds: new Set([first, second]) });
    const ledger = new Ledger(ddb, tableName);

    // Act
    const report = await migrate();
    const recounted = await ledger.count({ kind: 'budget', period, cents: 5_000 }, first);
    const returned = await ledger.uncount({ kind: 'budget', period, cents: 5_000 }, second);
    const counted = await ledger.count({ kind: 'budget', period, cents: 5_000 }, fresh, { limit: 10_000 });

    // Assess
    expect(report).toMatchObject({ migrated: 1, markers: 2, rewrites: expect.objectContaining({ budgetEventIds: 1 }) });
    expect(await item(`budget#${period}#${first}`)).toMatchObject({ counted: true, cents: 5_000 });
    expect(await item(`budget#${period}`)).not.toHaveProperty('eventIds');
    expect([recounted, returned, counted]).toEqual([true, true, true]);
    expect(await ledger.spent(period)).toEqual({ cents: 10_000, referrals: 2 });
  });

  it('leaves a period a worker changed between the markers and the total for the next run, and counts it exactly then', async () => {
    // Prepare: a worker of the release still deployed (the pass runs before the upgrade) returns one
    // referral's share after the pass wrote the markers: the counter's change on a referral that has
    // a marker, its total's write then its marker's, as that release's counter makes them
    const [kept, returnedMeanwhile] = [randomUUID(), randomUUID()];
    await put({ pk: `budget#${period}`, spentCents: 10_000, eventIds: new Set([kept, returnedMeanwhile]) });
    const ledger = new Ledger(ddb, tableName);
    const worker = async () => {
      await ddb.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: `budget#${period}` },
          UpdateExpression: 'SET version = :next ADD spentCents :delta, referrals :one',
          ConditionExpression: 'attribute_not_exists(version)',
          ExpressionAttributeValues: { ':next': 1, ':delta': -5_000, ':one': -1 },
        }),
      );
      await ddb.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: `budget#${period}#${returnedMeanwhile}` },
          UpdateExpression: 'SET counted = :counted, seq = :seq, cents = :cents',
          ConditionExpression: 'attribute_not_exists(seq) OR seq < :seq',
          ExpressionAttributeValues: { ':counted': false, ':seq': 1, ':cents': 5_000 },
        }),
      );
    };

    // Act
    const first = await migrate(racingClient(`budget#${period}`, worker));
    const second = await migrate();

    // Assess
    expect(first).toMatchObject({ migrated: 0, leftForNextRun: 1 });
    expect(second).toMatchObject({ migrated: 1, leftForNextRun: 0 });
    expect(await ledger.spent(period)).toEqual({ cents: 5_000, referrals: 1 });
    expect(await ledger.uncount({ kind: 'budget', period, cents: 5_000 }, returnedMeanwhile)).toBe(false);
  });

  it('refuses to count in a period the pass has not folded yet, naming the migration', async () => {
    // Prepare
    await put({ pk: `budget#${period}`, spentCents: 5_000, eventIds: new Set([randomUUID()]) });

    // Act
    const error = await new Ledger(ddb, tableName).count({ kind: 'budget', period, cents: 5_000 }, randomUUID()).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('ledger_not_migrated');
    expect((error as Error).message).toContain('ops -- migrate');
  });
});

describe('ops migrate: the pass', () => {
  async function seedOneOfEach(): Promise<void> {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await put(referral(a, { expiresOn: '2026-12-31', referrerCardId: 'gid://shopify/GiftCard/1' }));
    await put(referral(b, { status: 'HELD', parkedAt: PARKED, heldAt: PARKED, budgetCents: 5_000 }));
    await put(referral(c, { status: 'COMPLETED' }));
    await put({ pk: 'budget#month#2026-11', spentCents: 5_000, eventIds: new Set([b]) });
  }

  it('changes nothing when run again', async () => {
    // Prepare
    await seedOneOfEach();
    await migrate();
    const before = await all();

    // Act
    const again = await migrate();

    // Assess
    expect(again).toMatchObject({ oldShape: 0, migrated: 0, markers: 0, leftForNextRun: 0, refused: [] });
    expect(await all()).toEqual(before);
  });

  it('only counts with --dry-run', async () => {
    // Prepare
    await seedOneOfEach();
    const before = await all();

    // Act
    const report = await migrate(ddb, true);

    // Assess
    expect(report).toMatchObject({ dryRun: true, oldShape: 3, migrated: 3, markers: 1 });
    expect(await all()).toEqual(before);
  });

  it('reads every page of a table larger than one Scan answer', async () => {
    // Prepare: ~1.3 MB of today's records (a Scan page stops at 1 MB), then one old-shape record
    const padding = 'x'.repeat(40_000);
    for (let i = 0; i < 32; i++) await put(referral(randomUUID(), { padding }));
    const old = randomUUID();
    await put(referral(old, { expiresOn: '2026-12-31' }));

    // Act
    const report = await migrate();

    // Assess
    expect(report).toMatchObject({ scanned: 33, oldShape: 1, migrated: 1 });
    expect(await item(`referral#${old}`)).not.toHaveProperty('expiresOn');
  });

  it('prints counts through `npm run ops -- migrate`, never an email or a code, and exits 0 once the ledger is migrated', async () => {
    // Prepare
    await seedOneOfEach();
    const out: string[] = [];
    const io: CliIo = { stdout: (text) => out.push(text), stderr: (text) => out.push(text) };
    const target = { description: 'test table', ddb, tableName, close: () => undefined } as unknown as Target;

    // Act
    const code = await main(['migrate', '--local'], io, async () => target);

    // Assess
    const printed = out.join('\n');
    expect(code).toBe(0);
    expect(printed).toContain('migrated 3 items, 1 budget markers written');
    expect(printed).not.toMatch(/@|REF-/);
  });
});

describe('ops migrate: the command', () => {
  it('exits 1 naming each refused record by event id and reason, so the upgrade does not go ahead unnoticed', async () => {
    // Prepare
    const eventId = randomUUID();
    await put(referral(eventId, { status: 'HELD', parkedAt: PARKED, budgetCents: 9_000 }));
    const out: string[] = [];
    const io: CliIo = { stdout: (text) => out.push(text), stderr: (text) => out.push(text) };
    const target = { description: 'test table', ddb, tableName, close: () => undefined } as unknown as Target;

    // Act
    const code = await main(['migrate', '--local'], io, async () => target);

    // Assess
    expect(code).toBe(1);
    expect(out.join('\n')).toContain(`${eventId}  budget_share_differs_from_reward`);
  });
});
