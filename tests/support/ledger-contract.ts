import { randomUUID } from 'node:crypto';
import { LeaseLostError, type BeginInput, type LedgerPort, type LedgerRecord, type LifecycleIndex } from '../../lib/domain/ledger-port';
import type { Referral } from '../../lib/domain/referral';
import {
  approve,
  cancel,
  claimReleaseSend,
  decide,
  expire,
  notQualifiedDone,
  qualify,
  finish,
  recordCard,
  recordCustomerIo,
  recordPostHog,
  recordTakenSeen,
  release,
  replaceCode,
} from '../../lib/domain/steps';
import { failure } from './failure';
import { begunRecord } from './ledger-records';

/** A clock the test moves by hand: leases and release times are read from it. */
export interface Clock {
  now: () => number;
  advance(ms: number): void;
}

/** A ledger under test, on `clock`, with a way to put a record in place as an earlier attempt (or the lifecycle) left it. */
export interface LedgerUnderTest {
  ledger: LedgerPort;
  /** The lifecycle index on the same records (lib/adapters/dynamodb/lifecycle-index.ts; the memory twin is its own). */
  index: LifecycleIndex;
  seed(record: LedgerRecord): Promise<void>;
}

export type LedgerFactory = (clock: Clock) => Promise<LedgerUnderTest>;

const START = Date.parse('2026-11-20T10:00:00.000Z');
const LEASE_MS = 30_000;
/** The queue message decide is given, kept when its verdict parks the referral. */
const PARKED = '{"v":1}';

function manualClock(): Clock {
  let now = START;
  return { now: () => now, advance: (ms) => (now += ms) };
}

function referral(eventId: string, overrides: Partial<Referral> = {}): Referral {
  return {
    v: 1,
    eventId,
    eventName: 'referral redeemed',
    referrerEmail: 'ada@example.com',
    redeemerEmail: 'grace@example.org',
    customerEmail: 'grace@example.org',
    ...overrides,
  };
}

function beginInput(clock: Clock, owner: string, overrides: Partial<BeginInput> = {}): BeginInput {
  return {
    owner,
    leaseUntil: clock.now() + LEASE_MS,
    codes: { referrer: `REF-${owner}`, redeemer: `RED-${owner}` },
    customerioEventId: `cio-${owner}`,
    rewardType: 'gift_card',
    rewardAmount: '25.00',
    ...overrides,
  };
}

/** A record as it stands after a begin long ago, without a lease: the base for seeded states. */
function seeded(eventId: string, overrides: Partial<LedgerRecord>): LedgerRecord {
  const iso = new Date(START - 3_600_000).toISOString();
  return begunRecord(eventId, iso, { referrerCode: 'SEEDREF1', redeemerCode: 'SEEDRED1', customerioEventId: 'cio-seed', ...overrides });
}

/**
 * The conditional-write semantics the money paths rely on (lib/domain/ledger-port.ts), one spec for every
 * LedgerPort: run on dynalite against lib/adapters/dynamodb/ledger.ts (the truth) and on the in-memory twin, so the
 * twin the unit tests use cannot drift from the DynamoDB conditions it imitates.
 */
export function describeLedgerContract(name: string, makeLedger: LedgerFactory): void {
  describe(`LedgerPort contract: ${name}`, () => {
    let clock: Clock;
    let subject: LedgerUnderTest;
    let ledger: LedgerPort;
    let eventId: string;

    beforeEach(async () => {
      clock = manualClock();
      subject = await makeLedger(clock);
      ledger = subject.ledger;
      eventId = randomUUID();
    });

    describe('begin', () => {
      it('creates a new record, leased to the caller, with the codes, reward and people of this first attempt', async () => {
        // Act
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Assess
        expect(begun.outcome).toBe('acquired');
        expect(await ledger.get(eventId)).toMatchObject({
          eventId,
          status: 'IN_PROGRESS',
          leaseOwner: 'a',
          leaseExpiresAt: START + LEASE_MS,
          referrerCode: 'REF-a',
          redeemerCode: 'RED-a',
          customerioEventId: 'cio-a',
          rewardType: 'gift_card',
          rewardAmount: '25.00',
          distinctId: 'grace@example.org',
          attempts: 1,
          createdAt: new Date(START).toISOString(),
        });
      });

      it('keeps what the first attempt chose (if_not_exists) when a later attempt takes an expired lease over', async () => {
        // Prepare
        await ledger.begin(referral(eventId, { distinctId: 'person-1' }), beginInput(clock, 'a'));
        clock.advance(LEASE_MS + 1);

        // Act
        const later = referral(eventId, { referrerEmail: 'other@example.com', distinctId: 'person-2' });
        const begun = await ledger.begin(later, beginInput(clock, 'b', { rewardType: 'discount_code', rewardAmount: '10.00' }));

        // Assess
        expect(begun.outcome).toBe('acquired');
        expect(await ledger.get(eventId)).toMatchObject({
          leaseOwner: 'b',
          attempts: 2,
          referrerCode: 'REF-a',
          redeemerCode: 'RED-a',
          customerioEventId: 'cio-a',
          rewardType: 'gift_card',
          rewardAmount: '25.00',
          referrerEmail: 'ada@example.com',
          distinctId: 'person-1',
          createdAt: new Date(START).toISOString(),
        });
      });

      it('reports busy, and changes nothing, while another worker holds an unexpired lease', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));
        clock.advance(LEASE_MS - 1);

        // Act
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Assess
        expect(begun.outcome).toBe('busy');
        expect(await ledger.get(eventId)).toMatchObject({ leaseOwner: 'a', attempts: 1 });
      });

      it('lets the lease holder begin again within its lease', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Assess
        expect(begun.outcome).toBe('acquired');
        expect(await ledger.get(eventId)).toMatchObject({ leaseOwner: 'a', attempts: 2 });
      });

      it.each([
        ['COMPLETED', 'completed'],
        ['REJECTED', 'rejected'],
        ['REVIEW', 'parked'],
        ['REVOKED', 'parked'],
      ] as const)('never takes up a %s record (%s)', async (status, outcome) => {
        // Prepare
        await subject.seed(seeded(eventId, { status }));

        // Act
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Assess
        expect(begun).toMatchObject({ outcome, record: { status } });
        expect(await ledger.get(eventId)).toMatchObject({ status, attempts: 1 });
        expect((await ledger.get(eventId))?.leaseOwner).toBeUndefined();
      });

      it('leaves a HELD record parked before its release time and takes it up once that has passed', async () => {
        // Prepare
        await subject.seed(seeded(eventId, { status: 'HELD', releaseAt: START + 1_000 }));

        // Act
        const early = await ledger.begin(referral(eventId), beginInput(clock, 'b'));
        clock.advance(1_000);
        const due = await ledger.begin(referral(eventId), beginInput(clock, 'c'));

        // Assess
        expect(early.outcome).toBe('parked');
        expect(due.outcome).toBe('acquired');
        expect(await ledger.get(eventId)).toMatchObject({ status: 'IN_PROGRESS', leaseOwner: 'c', referrerCode: 'SEEDREF1', attempts: 2 });
      });

      it('takes a FAILED record up again (a redrive), with its first codes', async () => {
        // Prepare
        await subject.seed(seeded(eventId, { status: 'FAILED', failureReason: 'shopify_auth' }));

        // Act
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Assess
        expect(begun.outcome).toBe('acquired');
        expect(await ledger.get(eventId)).toMatchObject({ status: 'IN_PROGRESS', leaseOwner: 'b', referrerCode: 'SEEDREF1' });
      });
    });

    describe('steps fenced on the lease', () => {
      it('records a card with its id and expiry for the lease holder', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const record = await recordCard(ledger, eventId, 'a', 'referrer', 'gid://shopify/GiftCard/1', '2027-01-31');

        // Assess
        expect(record).toMatchObject({ referrerCardId: 'gid://shopify/GiftCard/1', referrerExpiresOn: '2027-01-31', leaseOwner: 'a' });
        expect(await ledger.get(eventId)).toMatchObject({
          referrerCardId: 'gid://shopify/GiftCard/1',
          referrerCardAt: new Date(START).toISOString(),
        });
      });

      it('refuses a step from a worker whose lease was taken over (LeaseLostError), changing nothing', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));
        clock.advance(LEASE_MS + 1);
        await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Act
        const error = await failure(recordCard(ledger, eventId, 'a', 'referrer', 'gid://shopify/GiftCard/stale'));

        // Assess
        expect(error).toBeInstanceOf(LeaseLostError);
        expect((await ledger.get(eventId))?.referrerCardId).toBeUndefined();
      });

      it('refuses a step on a referral that was never begun', async () => {
        // Act
        const error = await failure(decide(ledger, eventId, 'a', { kind: 'pay' }, PARKED));

        // Assess
        expect(error).toBeInstanceOf(LeaseLostError);
        expect(await ledger.get(eventId)).toBeUndefined();
      });

      it('stores the decision and its reason', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        await decide(ledger, eventId, 'a', { kind: 'reject', reason: 'self_referral' }, PARKED);

        // Assess
        expect(await ledger.get(eventId)).toMatchObject({ decision: 'REJECTED', rejectionReason: 'self_referral', status: 'IN_PROGRESS' });
      });

      it('replaces a code only while the old one is still the current one', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const stale = await failure(replaceCode(ledger, eventId, 'a', 'referrer', 'NOT-CURRENT', 'NEWCODE1'));
        const swapped = await replaceCode(ledger, eventId, 'a', 'referrer', 'REF-a', 'NEWCODE2');

        // Assess
        expect(stale).toBeInstanceOf(LeaseLostError);
        expect(swapped).toMatchObject({ referrerCode: 'NEWCODE2', redeemerCode: 'RED-a', codeCollisions: 1 });
      });

      it('records the first "taken, not ours" sighting of a code only while it is still the current one', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const stale = await failure(recordTakenSeen(ledger, eventId, 'a', 'referrer', 'NOT-CURRENT'));
        const seen = await recordTakenSeen(ledger, eventId, 'a', 'referrer', 'REF-a');

        // Assess
        expect(stale).toBeInstanceOf(LeaseLostError);
        expect(seen).toMatchObject({
          referrerTakenSeenCode: 'REF-a',
          referrerTakenSeenAt: new Date(START).toISOString(),
          referrerCode: 'REF-a',
        });
        expect(seen.redeemerTakenSeenAt).toBeUndefined();
      });

      it('refuses a sighting from a worker whose lease was taken over, changing nothing', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));
        clock.advance(LEASE_MS + 1);
        await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Act
        const error = await failure(recordTakenSeen(ledger, eventId, 'a', 'referrer', 'REF-a'));

        // Assess
        expect(error).toBeInstanceOf(LeaseLostError);
        expect((await ledger.get(eventId))?.referrerTakenSeenAt).toBeUndefined();
      });

      it('stores a pay verdict with the decision, in the same write; a hold stores none', async () => {
        // Prepare
        const other = randomUUID();
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));
        await ledger.begin(referral(other), beginInput(clock, 'a'));

        // Act
        const parked = await decide(ledger, other, 'a', { kind: 'hold', until: START + 1_000 }, PARKED);
        const paid = await decide(ledger, eventId, 'a', { kind: 'pay' }, PARKED);

        // Assess
        expect(parked.gatePassedAt).toBeUndefined();
        expect(paid).toMatchObject({ decision: 'ACCEPTED', gatePassedAt: new Date(START).toISOString() });
      });

      it('stores a pay verdict reached after the decision (a record the previous release accepted), fenced on the lease', async () => {
        // Prepare
        await subject.seed(seeded(eventId, { decision: 'ACCEPTED', leaseOwner: 'a', leaseExpiresAt: START + LEASE_MS }));

        // Act
        const stranger = await failure(decide(ledger, eventId, 'b', { kind: 'pay' }, PARKED));
        const passed = await decide(ledger, eventId, 'a', { kind: 'pay' }, PARKED);

        // Assess
        expect(stranger).toBeInstanceOf(LeaseLostError);
        expect(passed).toMatchObject({ decision: 'ACCEPTED', gatePassedAt: new Date(START).toISOString(), leaseOwner: 'a' });
      });

      it('parks a hold verdict in the write that stores it: HELD until its time, in the index, the lease freed', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const record = await decide(ledger, eventId, 'a', { kind: 'hold', until: START + 1_000 }, PARKED);
        const early = await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Assess
        expect(record).toMatchObject({
          status: 'HELD',
          decision: 'ACCEPTED',
          releaseAt: START + 1_000,
          lifecycleQueue: 'held',
          lifecycleAt: START + 1_000,
          parkedMessage: PARKED,
        });
        expect(record.leaseOwner).toBeUndefined();
        expect(early.outcome).toBe('parked');
      });

      it('parks a review verdict with its reasons and hold time, and no worker takes it up', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const record = await decide(ledger, eventId, 'a', { kind: 'review', reasons: ['velocity'], holdUntil: START + 5_000 }, PARKED);
        clock.advance(LEASE_MS + 1);
        const later = await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Assess
        expect(record).toMatchObject({
          status: 'REVIEW',
          decision: 'ACCEPTED',
          reviewReasons: ['velocity'],
          holdUntil: START + 5_000,
          lifecycleQueue: 'review',
        });
        expect(later.outcome).toBe('parked');
      });

      it('with finish, ends the referral in the same write: final status, its time, no lease', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const record = await recordCustomerIo(ledger, eventId, 'a', 'COMPLETED');
        const after = await failure(recordPostHog(ledger, eventId, 'a'));

        // Assess
        expect(record).toMatchObject({
          status: 'COMPLETED',
          customerioAt: new Date(START).toISOString(),
          completedAt: new Date(START).toISOString(),
        });
        expect(record.leaseOwner).toBeUndefined();
        expect(record.leaseExpiresAt).toBeUndefined();
        expect(after).toBeInstanceOf(LeaseLostError);
      });

      it('records PostHog without ending the referral when no final status is given', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const record = await recordPostHog(ledger, eventId, 'a');

        // Assess
        expect(record).toMatchObject({ status: 'IN_PROGRESS', posthogAt: new Date(START).toISOString(), leaseOwner: 'a' });
      });

      it('finish ends the referral as COMPLETED or REJECTED', async () => {
        // Prepare
        const other = randomUUID();
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));
        await ledger.begin(referral(other), beginInput(clock, 'a'));

        // Act
        const completed = await finish(ledger, eventId, 'a', 'COMPLETED');
        const rejected = await finish(ledger, other, 'a', 'REJECTED');

        // Assess
        expect(completed).toMatchObject({ status: 'COMPLETED', completedAt: new Date(START).toISOString() });
        expect(rejected).toMatchObject({ status: 'REJECTED', rejectedAt: new Date(START).toISOString() });
        expect([completed.leaseOwner, rejected.leaseOwner]).toEqual([undefined, undefined]);
      });

      it('release frees the lease (another worker may begin at once) and notes why', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        await release(ledger, eventId, 'a', 'Shopify answered 503');
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'b'));

        // Assess
        expect(begun.outcome).toBe('acquired');
        expect(await ledger.get(eventId)).toMatchObject({ leaseOwner: 'b', lastError: 'Shopify answered 503' });
      });

      it('release by a worker that lost the lease is silent and changes nothing', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        await release(ledger, eventId, 'b', 'late');

        // Assess
        const record = await ledger.get(eventId);
        expect(record).toMatchObject({ leaseOwner: 'a' });
        expect(record?.lastError).toBeUndefined();
      });
    });

    describe("operator's moves and the lifecycle index", () => {
      it('moves a record only from the statuses named, with the conditions given', async () => {
        // Prepare
        await subject.seed(seeded(eventId, { status: 'REVIEW', holdUntil: START + 5_000, lifecycleQueue: 'review', lifecycleAt: START }));

        // Act
        const fromHeld = await ledger.move(eventId, ['HELD'], { step: 'test', set: { revokeReason: 'x' } });
        const approved = await approve(ledger, eventId, 'looks fine');
        const again = await approve(ledger, eventId, 'twice');

        // Assess
        expect(fromHeld).toBeUndefined();
        expect(approved).toMatchObject({
          status: 'HELD',
          releaseAt: START + 5_000,
          lifecycleQueue: 'held',
          reviewDecision: 'approved',
          reviewNote: 'looks fine',
        });
        expect(again).toBeUndefined();
        expect(await ledger.get(eventId)).toMatchObject({ reviewNote: 'looks fine' });
      });

      it("grants the releaser's claim to send once, and again only after the resend interval", async () => {
        // Prepare
        await subject.seed(seeded(eventId, { status: 'HELD', releaseAt: START, lifecycleQueue: 'held', lifecycleAt: START }));

        // Act
        const first = await claimReleaseSend(ledger, eventId, 1_000);
        const soon = await claimReleaseSend(ledger, eventId, 1_000);
        clock.advance(1_001);
        const later = await claimReleaseSend(ledger, eventId, 1_000);

        // Assess
        expect([first, soon, later]).toEqual([true, false, true]);
      });

      it('lists the referrals waiting in a queue up to a time, oldest first', async () => {
        // Prepare
        const [late, early, reviewed] = [eventId, randomUUID(), randomUUID()];
        await subject.seed(seeded(late, { status: 'HELD', releaseAt: START + 2_000, lifecycleQueue: 'held', lifecycleAt: START + 2_000 }));
        await subject.seed(seeded(early, { status: 'HELD', releaseAt: START + 1_000, lifecycleQueue: 'held', lifecycleAt: START + 1_000 }));
        await subject.seed(seeded(reviewed, { status: 'REVIEW', lifecycleQueue: 'review', lifecycleAt: START }));
        const ours = (records: { eventId: string }[]) =>
          records.map((record) => record.eventId).filter((id) => [late, early, reviewed].includes(id));

        // Act
        const due = ours(await subject.index.waiting('held', START + 1_500));
        const held = ours(await subject.index.waiting('held'));

        // Assess
        expect(due).toEqual([early]);
        expect(held).toEqual([early, late]);
      });
    });

    describe('fail', () => {
      it('records a failure for a referral that never began, without a lease', async () => {
        // Act
        const failed = await ledger.fail(eventId, 'a', 'config_invalid', 'SHOPIFY_STORE_DOMAIN is missing');

        // Assess
        expect(failed).toBe(true);
        expect(await ledger.get(eventId)).toMatchObject({
          status: 'FAILED',
          failureReason: 'config_invalid',
          lastError: 'SHOPIFY_STORE_DOMAIN is missing',
        });
      });

      it("records the lease holder's failure, keeps the codes and frees the lease", async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const failed = await ledger.fail(eventId, 'a', 'shopify_auth', 'Shopify answered 401');

        // Assess
        const record = await ledger.get(eventId);
        expect(failed).toBe(true);
        expect(record).toMatchObject({
          status: 'FAILED',
          failureReason: 'shopify_auth',
          referrerCode: 'REF-a',
          failedAt: new Date(START).toISOString(),
        });
        expect(record?.leaseOwner).toBeUndefined();
      });

      it('never overwrites a record another worker actively holds', async () => {
        // Prepare
        await ledger.begin(referral(eventId), beginInput(clock, 'a'));

        // Act
        const failed = await ledger.fail(eventId, 'b', 'retries_exhausted', 'late');

        // Assess
        expect(failed).toBe(false);
        expect(await ledger.get(eventId)).toMatchObject({ status: 'IN_PROGRESS', leaseOwner: 'a' });
      });

      it.each(['COMPLETED', 'REJECTED', 'REVIEW', 'REVOKED'] as const)('never overwrites a %s record', async (status) => {
        // Prepare
        await subject.seed(seeded(eventId, { status }));

        // Act
        const failed = await ledger.fail(eventId, 'b', 'retries_exhausted', 'late');

        // Assess
        expect(failed).toBe(false);
        expect(await ledger.get(eventId)).toMatchObject({ status });
        expect((await ledger.get(eventId))?.failureReason).toBeUndefined();
      });

      it('never overwrites a HELD record before its release time', async () => {
        // Prepare
        await subject.seed(seeded(eventId, { status: 'HELD', releaseAt: START + 1_000 }));

        // Act
        const failed = await ledger.fail(eventId, 'b', 'retries_exhausted', 'late');

        // Assess
        expect(failed).toBe(false);
        expect(await ledger.get(eventId)).toMatchObject({ status: 'HELD' });
      });
    });

    describe('claims', () => {
      const person = () => `person-${eventId}@example.com`;
      const redeemer = () => ({ kind: 'redeemer' as const, person: person() });
      const referrer = () => ({ kind: 'referrer' as const, person: person() });

      it('gives a redeemer to one referral: the same one may claim again, another may not', async () => {
        // Prepare
        const other = randomUUID();

        // Act
        const first = await ledger.count(redeemer(), eventId);
        const again = await ledger.count(redeemer(), eventId);
        const rival = await ledger.count(redeemer(), other);

        // Assess
        expect([first, again, rival]).toEqual([true, true, false]);
        expect((await ledger.holders(redeemer()))[0]).toBe(eventId);
      });

      it("hands a redeemer's claim over only from the stale holder named", async () => {
        // Prepare
        const stale = randomUUID();
        const other = randomUUID();
        await ledger.count(redeemer(), stale);

        // Act
        const wrongName = await ledger.count(redeemer(), eventId, { takeOver: other });
        const handedOver = await ledger.count(redeemer(), eventId, { takeOver: stale });

        // Assess
        expect([wrongName, handedOver]).toEqual([false, true]);
        expect((await ledger.holders(redeemer()))[0]).toBe(eventId);
      });

      it("releases a redeemer's claim only for the referral holding it", async () => {
        // Prepare
        const other = randomUUID();
        await ledger.count(redeemer(), eventId);

        // Act
        await ledger.uncount(redeemer(), other);
        const heldAfterOthersRelease = (await ledger.holders(redeemer()))[0];
        await ledger.uncount(redeemer(), eventId);

        // Assess
        expect(heldAfterOthersRelease).toBe(eventId);
        expect((await ledger.holders(redeemer()))[0]).toBeUndefined();
        expect(await ledger.count(redeemer(), other)).toBe(true);
      });

      it("counts each referral once against a referrer's cap and refuses past it", async () => {
        // Prepare
        const [second, third] = [randomUUID(), randomUUID()];

        // Act
        const claims = [
          await ledger.count(referrer(), eventId, { limit: 2 }),
          await ledger.count(referrer(), eventId, { limit: 2 }),
          await ledger.count(referrer(), second, { limit: 2 }),
          await ledger.count(referrer(), third, { limit: 2 }),
        ];

        // Assess
        expect(claims).toEqual([true, true, true, false]);
        expect((await ledger.holders(referrer())).sort()).toEqual([eventId, second].sort());
      });

      it('gives a slot back only for the referral holding it, and the freed slot can be taken', async () => {
        // Prepare
        const [other, next] = [randomUUID(), randomUUID()];
        await ledger.count(referrer(), eventId, { limit: 1 });

        // Act
        await ledger.uncount(referrer(), other);
        const whileHeld = await ledger.count(referrer(), next, { limit: 1 });
        await ledger.uncount(referrer(), eventId);
        const afterRelease = await ledger.count(referrer(), next, { limit: 1 });

        // Assess
        expect([whileHeld, afterRelease]).toEqual([false, true]);
        expect(await ledger.holders(referrer())).toEqual([next]);
      });

      it('reports no holders for a person never claimed', async () => {
        // Act
        const holders = await ledger.holders(referrer());
        const holder = (await ledger.holders(redeemer()))[0];

        // Assess
        expect(holders).toEqual([]);
        expect(holder).toBeUndefined();
      });
    });

    describe('pay on value: waiting, qualified, not qualified', () => {
      const QUALIFY_BY = START + 86_400_000;
      const waiting = async () => {
        await ledger.begin(referral(eventId), beginInput(clock, 'w1'));
        return decide(ledger, eventId, 'w1', { kind: 'await', until: QUALIFY_BY }, PARKED);
      };
      /** This referral, if the index lists it as waiting (other tests' referrals may share the table). */
      const listed = async (until?: number) =>
        (await subject.index.waiting('awaiting', until)).map((r) => r.eventId).filter((id) => id === eventId);

      it('parks an await verdict in the write that stores it: AWAITING until its deadline, in its own index queue, the lease freed', async () => {
        // Act
        const record = await waiting();
        const again = await ledger.begin(referral(eventId), beginInput(clock, 'w2'));

        // Assess
        expect(record).toMatchObject({ status: 'AWAITING', decision: 'ACCEPTED', qualifyBy: QUALIFY_BY, parkedMessage: PARKED });
        expect(record.leaseOwner).toBeUndefined();
        expect(again.outcome).toBe('parked');
        expect(await listed(QUALIFY_BY)).toEqual([eventId]);
        expect(await listed(QUALIFY_BY - 1)).toEqual([]);
      });

      it('qualifies a waiting referral once, out of the index, for a worker to begin it again', async () => {
        // Prepare
        await waiting();

        // Act
        const qualified = await qualify(ledger, eventId, 'q1', QUALIFY_BY);
        const again = await qualify(ledger, eventId, 'q2', QUALIFY_BY);
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'w2'));

        // Assess
        expect(qualified).toMatchObject({ status: 'IN_PROGRESS', qualifyingEventId: 'q1' });
        expect(again).toBeUndefined();
        expect(begun.outcome).toBe('acquired');
        expect(await listed()).toEqual([]);
      });

      it('expires a waiting referral once, final, kept in the index until its follow-ups are done', async () => {
        // Prepare
        await waiting();

        // Act
        const expired = await expire(ledger, eventId, QUALIFY_BY);
        const lateQualify = await qualify(ledger, eventId, 'q1', QUALIFY_BY);
        const begun = await ledger.begin(referral(eventId), beginInput(clock, 'w2'));
        const failed = await ledger.fail(eventId, 'w2', 'x', 'y');
        const stillListed = await listed();
        await notQualifiedDone(ledger, eventId);

        // Assess
        expect(expired?.status).toBe('NOT_QUALIFIED');
        expect([lateQualify, begun.outcome, failed]).toEqual([undefined, 'parked', false]);
        expect(stillListed).toEqual([eventId]);
        expect(await listed()).toEqual([]);
        expect((await ledger.get(eventId))?.status).toBe('NOT_QUALIFIED');
      });

      it('cancels a waiting referral before anything is issued', async () => {
        // Prepare
        await waiting();

        // Act
        const cancelled = await cancel(ledger, eventId, 'refund');

        // Assess
        expect(cancelled).toMatchObject({ status: 'REVOKED', revokedBeforePayout: true });
        expect(await listed()).toEqual([]);
      });

      it('points a person key at one referral, hands it over only from the holder named, and releases it only for its holder', async () => {
        // Prepare
        const key = { kind: 'person' as const, person: `id:${eventId}` };
        const [other, next] = [randomUUID(), randomUUID()];

        // Act
        const claims = [await ledger.count(key, eventId), await ledger.count(key, eventId), await ledger.count(key, other)];
        const handedOver = await ledger.count(key, next, { takeOver: eventId });
        const wrongRelease = await ledger.uncount(key, eventId);
        const holder = (await ledger.holders(key))[0];
        const release = await ledger.uncount(key, next);

        // Assess
        expect(claims).toEqual([true, true, false]);
        expect([handedOver, wrongRelease, holder, release]).toEqual([true, false, next, true]);
        expect(await ledger.holders(key)).toEqual([]);
      });

      it("keeps a person's latest qualifying event: an older one noted after it changes nothing", async () => {
        // Prepare
        const person = `id:${eventId}`;
        const later = { eventId: 'later', occurredAt: START + 2_000, personId: eventId };
        const earlier = { eventId: 'earlier', occurredAt: START + 1_000, distinctId: 'd' };

        // Act
        const none = await ledger.qualifying(person);
        await ledger.noteQualifying(person, later, 1);
        await ledger.noteQualifying(person, earlier, 1);
        await ledger.noteQualifying(person, later, 1);

        // Assess
        expect(none).toBeUndefined();
        expect(await ledger.qualifying(person)).toEqual(later);
      });

      it('marks a person event handled, as often as it is handled', async () => {
        // Act
        const marks = [await ledger.markPersonEvent(eventId, 'qualify', 1), await ledger.markPersonEvent(eventId, 'qualify', 1)];

        // Assess
        expect(marks).toEqual([undefined, undefined]);
      });

      it('tells whether a person event was marked handled', async () => {
        // Act
        const before = await ledger.personEventMarked(eventId);
        await ledger.markPersonEvent(eventId.toUpperCase(), 'revoke', 1);

        // Assess
        expect([before, await ledger.personEventMarked(eventId)]).toEqual([false, true]);
      });
    });
  });
}

/** The lifecycle's counters under test (budget periods, referrer velocity), on `clock`. */
export type CountersFactory = (clock: Clock) => Promise<Pick<LedgerPort, 'count' | 'uncount' | 'spent' | 'velocity'>>;

/**
 * The counters' semantics the lifecycle relies on (lib/domain/lifecycle/guards.ts), one spec for the
 * DynamoDB ledger on dynalite (lib/adapters/dynamodb/ledger.ts, budget-counter.ts)
 * and the memory twin: each referral counted once and uncounted once, a limit exact under racing
 * referrals, a velocity answer that a retry gets back.
 */
export function describeCounterContract(name: string, makeCounters: CountersFactory): void {
  describe(`lifecycle counters contract: ${name}`, () => {
    let clock: Clock;
    let counters: Awaited<ReturnType<CountersFactory>>;
    let period: string;
    const HOUR = 3_600_000;

    beforeEach(async () => {
      clock = manualClock();
      counters = await makeCounters(clock);
      period = `day#contract-${randomUUID()}`;
    });
    const budget = (cents: number) => ({ kind: 'budget' as const, period, cents });

    describe('budget periods', () => {
      it('counts a referral once however often it is counted, and says so each time', async () => {
        // Prepare
        const eventId = randomUUID();

        // Act
        const answers = [
          await counters.count(budget(5_000), eventId, { limit: 10_000 }),
          await counters.count(budget(5_000), eventId, { limit: 10_000 }),
          await counters.count(budget(5_000), eventId),
        ];

        // Assess
        expect(answers).toEqual([true, true, true]);
        expect(await counters.spent(period)).toEqual({ cents: 5_000, referrals: 1 });
      });

      it('refuses, and counts nothing for, a referral that would pass the limit; without a limit it counts past it', async () => {
        // Prepare
        const [first, second] = [randomUUID(), randomUUID()];
        await counters.count(budget(5_000), first, { limit: 8_000 });

        // Act
        const refused = await counters.count(budget(5_000), second, { limit: 8_000 });
        const spentAfterRefusal = await counters.spent(period);
        const approved = await counters.count(budget(5_000), second);

        // Assess
        expect([refused, approved]).toEqual([false, true]);
        expect(spentAfterRefusal).toEqual({ cents: 5_000, referrals: 1 });
        expect(await counters.spent(period)).toEqual({ cents: 10_000, referrals: 2 });
      });

      it("returns a counted referral's share once; returning it again, or one never counted, changes nothing", async () => {
        // Prepare
        const [counted, never] = [randomUUID(), randomUUID()];
        await counters.count(budget(5_000), counted, { limit: 10_000 });

        // Act
        const answers = [
          await counters.uncount(budget(5_000), counted),
          await counters.uncount(budget(5_000), counted),
          await counters.uncount(budget(5_000), never),
        ];

        // Assess
        expect(answers).toEqual([true, false, false]);
        expect(await counters.spent(period)).toEqual({ cents: 0, referrals: 0 });
      });

      it('counts a referral again after its share was returned (a day given back, then an approval)', async () => {
        // Prepare
        const eventId = randomUUID();
        await counters.count(budget(5_000), eventId, { limit: 10_000 });
        await counters.uncount(budget(5_000), eventId);

        // Act
        const again = await counters.count(budget(5_000), eventId);

        // Assess
        expect(again).toBe(true);
        expect(await counters.spent(period)).toEqual({ cents: 5_000, referrals: 1 });
      });

      it('counts exactly the limit when ten referrals race for the room of four', async () => {
        // Prepare
        const ids = Array.from({ length: 10 }, () => randomUUID());

        // Act
        const answers = await Promise.all(ids.map((id) => counters.count(budget(5_000), id, { limit: 20_000 })));

        // Assess
        expect(answers.filter(Boolean)).toHaveLength(4);
        expect(await counters.spent(period)).toEqual({ cents: 20_000, referrals: 4 });
      });

      it('counts a referral once when its attempts race, and returns it once when its returns race', async () => {
        // Prepare
        const eventId = randomUUID();

        // Act
        const counted = await Promise.all(Array.from({ length: 5 }, () => counters.count(budget(5_000), eventId, { limit: 100_000 })));
        const afterCounting = await counters.spent(period);
        const returned = await Promise.all(Array.from({ length: 5 }, () => counters.uncount(budget(5_000), eventId)));

        // Assess
        expect(counted).toEqual([true, true, true, true, true]);
        expect(afterCounting).toEqual({ cents: 5_000, referrals: 1 });
        expect(returned.filter(Boolean)).toHaveLength(1);
        expect(await counters.spent(period)).toEqual({ cents: 0, referrals: 0 });
      });
    });

    describe('referrer velocity', () => {
      const person = () => `velocity-${period}@example.com`;

      it("counts the referrer's referrals within the window up to this one's first sighting, this one included", async () => {
        // Prepare: one a day ago (outside a 12 h window), two within it
        const ids = [randomUUID(), randomUUID(), randomUUID()];
        await counters.velocity(person(), ids[0]!, 12 * HOUR, 10);
        clock.advance(24 * HOUR);
        await counters.velocity(person(), ids[1]!, 12 * HOUR, 10);
        clock.advance(HOUR);

        // Act
        const third = await counters.velocity(person(), ids[2]!, 12 * HOUR, 10);

        // Assess
        expect(third).toBe(2);
      });

      it('gives a retry the first answer, whatever the referrer did since', async () => {
        // Prepare
        const [first, second, third] = [randomUUID(), randomUUID(), randomUUID()];
        await counters.velocity(person(), first, 12 * HOUR, 10);
        const answer = await counters.velocity(person(), second, 12 * HOUR, 10);
        clock.advance(HOUR);
        await counters.velocity(person(), third, 12 * HOUR, 10);

        // Act
        const retry = await counters.velocity(person(), second, 12 * HOUR, 10);

        // Assess
        expect([answer, retry]).toEqual([2, 2]);
      });

      it('counts up to the cap it is given (the guard needs only "more than N")', async () => {
        // Prepare
        for (let i = 0; i < 6; i++) {
          await counters.velocity(person(), randomUUID(), 12 * HOUR, 3);
          clock.advance(1_000);
        }

        // Act
        const next = await counters.velocity(person(), randomUUID(), 12 * HOUR, 3);

        // Assess
        expect(next).toBe(3);
      });
    });
  });
}
