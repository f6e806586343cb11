import { CONTENTION_RETRY_MS, PermanentError, RetryableError } from '../../lib/domain/errors';
import type { LedgerRecord } from '../../lib/adapters/dynamodb/ledger';
import type { Referral } from '../../lib/domain/referral';
import {
  fulfilReferral,
  giftCardNote,
  parseGiftCardNote,
  type EventSender,
  type FulfilDeps,
  type FulfilmentMessage,
} from '../../lib/domain/rewards';
import { FakeShop, roleOf } from '../support/fake-shop';
import { MemoryLedger } from '../support/memory-ledger';
import { failure } from '../support/failure';
import type { LifecycleConfig } from '../../lib/infra/config';
import type { GuardCounters } from '../../lib/domain/lifecycle/guards';
import { release } from '../../lib/domain/steps';
import { signReferral } from '../../lib/domain/vouch';
import type { ProgramRules } from '../../lib/domain/rules';

const EVENT_ID = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61';
const CUSTOMERIO_EVENT_ID = '01JD4F4V3D7KXA5BH1T1Y0PTB1';
const NOW = Date.parse('2026-11-20T10:16:00.000Z');

const REFERRAL: Referral = {
  v: 1,
  eventId: EVENT_ID,
  eventName: 'referral redeemed',
  referrerEmail: 'referrer@example.com',
  redeemerEmail: 'redeemer@example.com',
  // As ingest queues it since #10 defect 3: the codes go to the redeemer.
  customerEmail: 'redeemer@example.com',
  personEmail: 'person@example.com',
};

const DAY = 86_400_000;

class FakeCustomerIo implements EventSender {
  public readonly sent: FulfilmentMessage[] = [];
  public onSend?: () => void | Promise<void>;

  public async sendFulfilment(message: FulfilmentMessage): Promise<void> {
    await this.onSend?.();
    this.sent.push(message);
  }
}

/** CODE0001, CODE0002, …: begin draws the referrer's code first, then the redeemer's. */
function codeSequence(): () => string {
  let n = 0;
  return () => `CODE${String(++n).padStart(4, '0')}`;
}

function setup(retry: FulfilDeps['retry'] = { baseDelayMs: 1, maxDelayMs: 2 }) {
  const ledger = new MemoryLedger();
  const shopify = new FakeShop();
  const customerio = new FakeCustomerIo();
  const deps: FulfilDeps = {
    ledger,
    shopify,
    customerio,
    rewardAmount: '25.00',
    customerioEvent: 'pyramid_scheme_fulfillment',
    newCode: codeSequence(),
    customerioEventId: () => CUSTOMERIO_EVENT_ID,
    retry,
    now: () => NOW,
  };
  return { ledger, shopify, customerio, deps };
}

const attempt = (owner = 'request-1/message-1') => ({ owner, deadline: Date.now() + 30_000 });

/** A record as an earlier attempt left it. */
/** The referrals parked so far, as the verdicts that parked them: HELD until a time, or in REVIEW. */
function parkedBy(ledger: MemoryLedger): { status: string; releaseAt?: number; reasons?: string[] }[] {
  return ledger.calls.flatMap((call): { status: string; releaseAt?: number; reasons?: string[] }[] =>
    call.op !== 'decide'
      ? []
      : call.verdict.kind === 'hold'
        ? [{ status: 'HELD', releaseAt: call.verdict.until }]
        : call.verdict.kind === 'review'
          ? [{ status: 'REVIEW', reasons: call.verdict.reasons }]
          : [],
  );
}

function storedRecord(overrides: Partial<LedgerRecord>): LedgerRecord {
  return {
    pk: `referral#${EVENT_ID}`,
    eventId: EVENT_ID,
    status: 'IN_PROGRESS',
    referrerEmail: REFERRAL.referrerEmail,
    redeemerEmail: REFERRAL.redeemerEmail,
    customerEmail: REFERRAL.customerEmail,
    referrerCode: 'EARLIER1',
    redeemerCode: 'EARLIER2',
    customerioEventId: CUSTOMERIO_EVENT_ID,
    attempts: 1,
    createdAt: new Date(NOW - 60_000).toISOString(),
    updatedAt: new Date(NOW - 60_000).toISOString(),
    ...overrides,
  };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks run until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 200 && !condition(); turn++) await new Promise((resolve) => setImmediate(resolve));
  if (!condition()) throw new Error('condition never became true');
}

describe('fulfilReferral: the normal path', () => {
  it('creates both gift cards with the persisted codes, sends one event and completes the record', async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    const record = ledger.records.get(EVENT_ID)!;
    expect(shopify.creates).toHaveLength(2);
    expect(shopify.codesFor('referrer')).toEqual([record.referrerCode]);
    expect(shopify.codesFor('redeemer')).toEqual([record.redeemerCode]);
    expect(customerio.sent).toHaveLength(1);
    expect(record).toMatchObject({ status: 'COMPLETED', referrerCardId: expect.any(String), redeemerCardId: expect.any(String) });
    expect(record.customerioAt).toBeDefined();
  });

  it('creates each card for the reward amount with a note naming the event and role', async () => {
    // Prepare
    const { shopify, deps } = setup();

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(shopify.creates).toEqual(
      expect.arrayContaining([
        { code: 'CODE0001', amount: '25.00', note: giftCardNote(EVENT_ID, 'referrer') },
        { code: 'CODE0002', amount: '25.00', note: giftCardNote(EVENT_ID, 'redeemer') },
      ]),
    );
  });

  it('sends the Customer.io event with the persisted codes, the emails and the persisted event id', async () => {
    // Prepare
    const { ledger, customerio, deps } = setup();

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    const record = ledger.records.get(EVENT_ID)!;
    expect(customerio.sent).toEqual([
      {
        eventId: EVENT_ID,
        name: 'pyramid_scheme_fulfillment',
        recipient: REFERRAL.customerEmail,
        referrerEmail: REFERRAL.referrerEmail,
        redeemerEmail: REFERRAL.redeemerEmail,
        referrerCode: record.referrerCode,
        redeemerCode: record.redeemerCode,
        id: record.customerioEventId,
        timestamp: Math.floor(NOW / 1000),
      },
    ]);
    expect(record.customerioEventId).toBe(CUSTOMERIO_EVENT_ID);
  });

  it('calls Customer.io only once both cards are recorded in the ledger', async () => {
    // Prepare
    const { ledger, customerio, deps } = setup();
    let atSend: LedgerRecord | undefined;
    customerio.onSend = () => {
      atSend = { ...ledger.records.get(EVENT_ID)! };
    };

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(atSend?.referrerCardId).toBeDefined();
    expect(atSend?.redeemerCardId).toBeDefined();
    expect(atSend?.customerioAt).toBeUndefined();
  });

  it('starts the second card before the first one has been created', async () => {
    // Prepare
    const { shopify, deps } = setup();
    const answers = { referrer: deferred<void>(), redeemer: deferred<void>() };
    const settled = { referrer: false, redeemer: false };
    let othersPendingAtStart: boolean | undefined;
    shopify.onCreate = (input, issue) => {
      const role = roleOf(input);
      if (shopify.creates.length === 2) othersPendingAtStart = !settled[role === 'referrer' ? 'redeemer' : 'referrer'];
      return answers[role].promise.then(() => {
        settled[role] = true;
        return issue(input);
      });
    };

    // Act
    const run = fulfilReferral(REFERRAL, deps, attempt());
    // Neither create has been answered yet: a sequential implementation never gets to the second.
    await until(() => shopify.creates.length === 2);
    answers.referrer.resolve();
    answers.redeemer.resolve();
    const outcome = await run;

    // Assess
    expect(othersPendingAtStart).toBe(true);
    expect(outcome).toEqual({ outcome: 'completed' });
  });

  it('returns already-completed and calls nothing when the record is completed', async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();
    ledger.seed(storedRecord({ status: 'COMPLETED', referrerCardId: 'gid://1', redeemerCardId: 'gid://2', customerioAt: 'x' }));

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'already-completed' });
    expect(shopify.creates).toEqual([]);
    expect(shopify.finds).toEqual([]);
    expect(customerio.sent).toEqual([]);
    expect(ledger.calls.map((call) => call.op)).toEqual(['begin']);
  });

  it('throws a RetryableError and calls nothing while another worker holds the lease', async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();
    ledger.seed(storedRecord({ leaseOwner: 'someone-else', leaseExpiresAt: Date.now() + 60_000 }));

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(shopify.creates).toEqual([]);
    expect(customerio.sent).toEqual([]);
  });

  it("hints the wait until the holder's lease runs out, so the copy comes back when it can take over", async () => {
    // Prepare
    const { ledger, deps } = setup();
    ledger.seed(storedRecord({ leaseOwner: 'someone-else', leaseExpiresAt: Date.now() + 45_000 }));

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect((error as RetryableError).retryAfterMs).toBeGreaterThan(40_000);
    expect((error as RetryableError).retryAfterMs).toBeLessThanOrEqual(45_000);
  });

  it('hints a wait of seconds when the lease is about to run out', async () => {
    // Prepare
    const { ledger, deps } = setup();
    ledger.seed(storedRecord({ leaseOwner: 'someone-else', leaseExpiresAt: Date.now() + 100 }));

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect((error as RetryableError).retryAfterMs).toBe(CONTENTION_RETRY_MS);
  });
});

describe('fulfilReferral: the last write ends the referral', () => {
  const posthog = () => ({ track: jest.fn(async () => undefined) });

  it('completes the record in the same write that records the Customer.io event', async () => {
    // Prepare
    const { ledger, deps } = setup();

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(ledger.calls.map((call) => call.op)).toEqual(['begin', 'decide', 'recordCard', 'recordCard', 'recordCustomerIo']);
    expect(ledger.calls.at(-1)).toMatchObject({ op: 'recordCustomerIo', finish: 'COMPLETED' });
    expect(ledger.records.get(EVENT_ID)).toMatchObject({
      status: 'COMPLETED',
      customerioAt: expect.any(String),
      completedAt: expect.any(String),
    });
    expect(ledger.records.get(EVENT_ID)?.leaseOwner).toBeUndefined();
  });

  it('with PostHog capture on, completes the record with the capture, after Customer.io', async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.posthog = posthog();

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    const lastTwo = ledger.calls.slice(-2).map((call) => [call.op, 'finish' in call ? call.finish : undefined]);
    expect(lastTwo).toEqual([
      ['recordCustomerIo', undefined],
      ['recordPostHog', 'COMPLETED'],
    ]);
    expect(ledger.calls.map((call) => call.op)).not.toContain('finish');
    expect(ledger.records.get(EVENT_ID)?.status).toBe('COMPLETED');
  });

  it('with PostHog capture on, ends a refused referral with the capture', async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.posthog = posthog();
    deps.rules = { maxRewardsPerReferrer: 10, blockedDomains: ['example.com'], referralSignatures: { mode: 'off' } };

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'rejected', reason: 'blocked_domain' });
    expect(ledger.calls.at(-1)).toMatchObject({ op: 'recordPostHog', finish: 'REJECTED' });
    expect(ledger.calls.map((call) => call.op)).not.toContain('finish');
    expect(ledger.records.get(EVENT_ID)).toMatchObject({ status: 'REJECTED', rejectedAt: expect.any(String) });
  });

  it('completes a record whose PostHog capture an earlier attempt recorded without ending it', async () => {
    // Prepare: written by a worker from before captures ended the referral
    const { ledger, customerio, deps } = setup();
    const capture = posthog();
    deps.posthog = capture;
    const at = new Date(NOW).toISOString();
    ledger.seed(
      storedRecord({ decision: 'ACCEPTED', referrerCardId: 'gid://1', redeemerCardId: 'gid://2', customerioAt: at, posthogAt: at }),
    );

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(customerio.sent).toEqual([]);
    expect(capture.track).not.toHaveBeenCalled();
    expect(ledger.records.get(EVENT_ID)?.status).toBe('COMPLETED');
  });
});

describe('fulfilReferral: resuming', () => {
  it('generates the codes once and reuses them when a retry resumes', async () => {
    // Prepare: the first attempt creates the referrer's card, then Shopify fails for the redeemer.
    const { ledger, shopify, customerio, deps } = setup({ baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 1 });
    shopify.onCreate = async (input, issue) => {
      if (roleOf(input) === 'redeemer') throw new RetryableError('Shopify answered 503');
      return issue(input);
    };
    await failure(fulfilReferral(REFERRAL, deps, attempt('attempt-1')));
    await release(ledger, EVENT_ID, 'attempt-1', 'Shopify answered 503');
    shopify.onCreate = undefined;
    const firstCodes = { referrer: shopify.codesFor('referrer'), redeemer: shopify.codesFor('redeemer') };
    shopify.creates.length = 0;

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt('attempt-2'));

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(firstCodes).toEqual({ referrer: ['CODE0001'], redeemer: ['CODE0002'] });
    expect(shopify.codesFor('referrer')).toEqual([]);
    expect(shopify.codesFor('redeemer')).toEqual(['CODE0002']);
    expect(customerio.sent[0]).toMatchObject({ referrerCode: 'CODE0001', redeemerCode: 'CODE0002' });
  });

  it('uses the codes an earlier attempt stored, not fresh ones', async () => {
    // Prepare
    const { shopify, customerio, ledger, deps } = setup();
    ledger.seed(storedRecord({}));

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(shopify.codesFor('referrer')).toEqual(['EARLIER1']);
    expect(shopify.codesFor('redeemer')).toEqual(['EARLIER2']);
    expect(customerio.sent[0]).toMatchObject({ referrerCode: 'EARLIER1', redeemerCode: 'EARLIER2' });
  });

  it('only completes the record when the cards and the Customer.io event are already recorded', async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();
    ledger.seed(storedRecord({ referrerCardId: 'gid://1', redeemerCardId: 'gid://2', customerioAt: new Date(NOW).toISOString() }));

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(shopify.creates).toEqual([]);
    expect(customerio.sent).toEqual([]);
    expect(ledger.records.get(EVENT_ID)?.status).toBe('COMPLETED');
  });
});

describe('fulfilReferral: codes Shopify reports as taken', () => {
  it('counts a taken code whose card note is ours as done, without a new code', async () => {
    // Prepare: Shopify creates the referrer's card but the answer is lost; the retry finds the code taken.
    const { ledger, shopify, customerio, deps } = setup();
    shopify.loseResponses((input) => roleOf(input) === 'referrer');

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(shopify.codesFor('referrer')).toEqual(['CODE0001', 'CODE0001']);
    expect(shopify.finds).toEqual(['CODE0001']);
    expect(ledger.records.get(EVENT_ID)?.referrerCardId).toBe(shopify.card('CODE0001')?.id);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toEqual([]);
    expect(customerio.sent[0].referrerCode).toBe('CODE0001');
  });

  it("persists a new code before trying it when the taken code is someone else's card", async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();
    shopify.seedCard('CODE0001', { id: 'gid://shopify/GiftCard/foreign', note: 'bought at the till' });
    const persistedAtCreate: string[] = [];
    shopify.onCreate = async (input, issue) => {
      if (roleOf(input) === 'referrer') persistedAtCreate.push(ledger.records.get(EVENT_ID)!.referrerCode);
      return issue(input);
    };

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(shopify.codesFor('referrer')).toEqual(['CODE0001', 'CODE0003']);
    expect(persistedAtCreate).toEqual(['CODE0001', 'CODE0003']);
    expect(ledger.calls).toContainEqual(
      expect.objectContaining({ op: 'replaceCode', role: 'referrer', oldCode: 'CODE0001', newCode: 'CODE0003' }),
    );
    const record = ledger.records.get(EVENT_ID)!;
    expect(record.referrerCode).toBe('CODE0003');
    expect(record.referrerCardId).not.toBe('gid://shopify/GiftCard/foreign');
    expect(customerio.sent[0].referrerCode).toBe('CODE0003');
  });

  it('treats a taken code whose card is noted for the other role as a collision', async () => {
    // Prepare
    const { ledger, shopify, deps } = setup();
    shopify.seedCard('CODE0001', { id: 'gid://shopify/GiftCard/other-role', note: giftCardNote(EVENT_ID, 'redeemer') });

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(ledger.records.get(EVENT_ID)?.referrerCode).toBe('CODE0003');
    expect(ledger.records.get(EVENT_ID)?.referrerCardId).not.toBe('gid://shopify/GiftCard/other-role');
  });

  it('throws a RetryableError, with no new code, when the taken code cannot be found yet', async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();
    shopify.onCreate = async (input, issue) => (roleOf(input) === 'referrer' ? { status: 'taken' } : issue(input));

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(shopify.codesFor('referrer')).toEqual(['CODE0001']);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toEqual([]);
    expect(ledger.records.get(EVENT_ID)?.referrerCode).toBe('CODE0001');
    expect(customerio.sent).toEqual([]);
  });

  it('gives up with a PermanentError code_collisions after three collisions in a row', async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();
    shopify.onCreate = async (input, issue) => {
      if (roleOf(input) === 'redeemer') return issue(input);
      shopify.seedCard(input.code, { id: `gid://foreign/${input.code}`, note: null });
      return { status: 'taken' };
    };

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('code_collisions');
    expect(shopify.codesFor('referrer')).toHaveLength(4);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toHaveLength(3);
    expect(customerio.sent).toEqual([]);
  });
});

describe('fulfilReferral: reward expiry', () => {
  it('issues a reward that does not exist yet with the full validity from now, when a retry comes days later', async () => {
    // Prepare: an earlier attempt chose the codes, then died
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({}));
    deps.rewardExpiresDays = 30;
    deps.now = () => NOW + 5 * DAY;

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess: 2026-11-25 + 30 days
    expect(shopify.creates.map((input) => input.expiresOn)).toEqual(['2026-12-25', '2026-12-25']);
    expect(ledger.records.get(EVENT_ID)).toMatchObject({ referrerExpiresOn: '2026-12-25', redeemerExpiresOn: '2026-12-25' });
  });

  it("records a lost-response reward found by look-up with the expiry it was created with, not the retry's", async () => {
    // Prepare: the referrer's card is created, the answer lost, and the retry comes two days later
    const { ledger, shopify, deps } = setup();
    deps.rewardExpiresDays = 30;
    let clock = NOW;
    deps.now = () => clock;
    shopify.onCreate = async (input, issue) => {
      const result = issue(input);
      if (roleOf(input) === 'referrer' && clock === NOW) {
        clock = NOW + 2 * DAY;
        throw new RetryableError('Shopify: no response within 10000 ms');
      }
      return result;
    };

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    const referrerCreates = shopify.creates.filter((input) => roleOf(input) === 'referrer');
    expect(referrerCreates.map((input) => input.expiresOn)).toEqual(['2026-12-20', '2026-12-22']);
    expect(shopify.cards.size).toBe(2);
    expect(ledger.records.get(EVENT_ID)?.referrerExpiresOn).toBe('2026-12-20');
  });

  it('names the expiry in the note of the reward it goes with', async () => {
    // Prepare
    const { shopify, deps } = setup();
    deps.rewardExpiresDays = 30;

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(shopify.creates.map((input) => parseGiftCardNote(input.note)?.expiresOn)).toEqual(['2026-12-20', '2026-12-20']);
  });

  it('sends no expiry when REWARD_EXPIRES_DAYS is not set', async () => {
    // Prepare
    const { shopify, deps } = setup();

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(shopify.creates.map((input) => input.expiresOn)).toEqual([undefined, undefined]);
  });
});

describe('fulfilReferral: one card failing', () => {
  it('still records the card that was created when the other fails permanently', async () => {
    // Prepare: the redeemer's card fails at once; the referrer's is created only afterwards.
    const { ledger, shopify, customerio, deps } = setup();
    const referrerAnswer = deferred<void>();
    shopify.onCreate = async (input, issue) => {
      if (roleOf(input) === 'redeemer') throw new PermanentError('shopify_invalid', 'Shopify: INVALID code');
      await referrerAnswer.promise;
      return issue(input);
    };

    // Act
    const run = failure(fulfilReferral(REFERRAL, deps, attempt()));
    await until(() => shopify.creates.length === 2);
    referrerAnswer.resolve();
    const error = await run;

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('shopify_invalid');
    const record = ledger.records.get(EVENT_ID)!;
    expect(record.referrerCardId).toBe(shopify.card('CODE0001')?.id);
    expect(record.redeemerCardId).toBeUndefined();
    expect(customerio.sent).toEqual([]);
    expect(record.status).toBe('IN_PROGRESS');
  });

  it('throws the permanent failure when the other card fails retryably', async () => {
    // Prepare
    const { shopify, deps } = setup({ baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 1 });
    shopify.fault((input) =>
      roleOf(input) === 'referrer'
        ? new RetryableError('Shopify answered 503')
        : new PermanentError('shopify_auth', 'Shopify answered 401'),
    );

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('shopify_auth');
  });

  it("sends the replaced code, not the colliding one, when the other card's ledger write was in flight", async () => {
    // Prepare: the redeemer's first code belongs to a card sold at the till; the referrer's
    // ledger write is held back until the redeemer has replaced its code and got its card.
    const { ledger, shopify, customerio, deps } = setup();
    shopify.seedCard('CODE0002', { id: 'gid://shopify/GiftCard/999', note: 'sold at the till' });
    const gate = deferred<void>();
    const write = deps.ledger.write.bind(deps.ledger);
    deps.ledger.write = async (eventId, owner, change) => {
      if (change.step === 'recordCard' && change.set?.referrerCardId) await gate.promise;
      return write(eventId, owner, change);
    };

    // Act
    const run = fulfilReferral(REFERRAL, deps, attempt());
    await until(() => ledger.calls.some((call) => call.op === 'recordCard' && call.role === 'redeemer'));
    gate.resolve();
    await run;

    // Assess: the mailed code is the redeemer's own card's, not the till card's
    const record = ledger.records.get(EVENT_ID)!;
    expect(record.redeemerCode).toBe('CODE0003');
    expect(customerio.sent[0].redeemerCode).toBe('CODE0003');
  });
});

describe('parseGiftCardNote', () => {
  it('reads back the referral and role giftCardNote wrote', () => {
    // Act
    const parsed = parseGiftCardNote(giftCardNote(EVENT_ID, 'redeemer'));

    // Assess
    expect(parsed).toEqual({ role: 'redeemer', eventId: EVENT_ID });
  });

  it('reads back the expiry giftCardNote wrote', () => {
    // Act
    const parsed = parseGiftCardNote(giftCardNote(EVENT_ID, 'referrer', '2027-01-31'));

    // Assess
    expect(parsed).toEqual({ role: 'referrer', eventId: EVENT_ID, expiresOn: '2027-01-31' });
  });

  it.each([null, '', 'a gift card someone made by hand', `referral-rewards friend reward for PostHog event ${EVENT_ID}`])(
    'reads nothing from the note %p',
    (note) => {
      // Act
      const parsed = parseGiftCardNote(note);

      // Assess
      expect(parsed).toBeUndefined();
    },
  );
});

describe('fulfilReferral: look-up by code with several matches (#10.7)', () => {
  it('takes our card when a foreign card with the same last characters comes first, and pays no new code', async () => {
    // Prepare: the referrer's card exists (an earlier attempt's lost answer); the search also returns a stranger's
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({}));
    shopify.seedCard('EARLIER1', { id: 'gid://shopify/GiftCard/ours', note: giftCardNote(EVENT_ID, 'referrer') });
    shopify.lookupNoise = [{ id: 'gid://shopify/GiftCard/foreign', note: 'bought at the till' }];

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(ledger.records.get(EVENT_ID)?.referrerCardId).toBe('gid://shopify/GiftCard/ours');
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toEqual([]);
  });

  it('retries instead of calling it a collision when the look-up may have more matches than it returned', async () => {
    // Prepare
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({}));
    shopify.seedCard('EARLIER1', { id: 'gid://shopify/GiftCard/ours', note: giftCardNote(EVENT_ID, 'referrer') });
    shopify.lookupNoise = [{ id: 'gid://shopify/GiftCard/foreign', note: 'bought at the till' }];
    shopify.lookupIncomplete = true;
    deps.retry = { baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 2 };

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toEqual([]);
  });
});

describe("fulfilReferral: the ledger's copy of the referral (#10.5, #10.6)", () => {
  const otherMessage: Referral = {
    ...REFERRAL,
    referrerEmail: 'mallory@example.com',
    redeemerEmail: 'mallory+2@example.com',
    customerEmail: 'mallory+3@example.com',
    distinctId: 'mallory',
  };

  it('mails the people the ledger holds, not those of a second message with the same uuid', async () => {
    // Prepare: the referral was decided for the first message's people
    const { ledger, customerio, deps } = setup();
    ledger.seed(storedRecord({ decision: 'ACCEPTED' }));

    // Act
    await fulfilReferral(otherMessage, deps, attempt());

    // Assess
    expect(customerio.sent).toHaveLength(1);
    expect(customerio.sent[0].recipient).toBe(REFERRAL.customerEmail);
    expect(customerio.sent[0]).toMatchObject({ referrerEmail: REFERRAL.referrerEmail, redeemerEmail: REFERRAL.redeemerEmail });
  });

  it('mails the redeemer of a record whose customerEmail an earlier release set to another PostHog person (#10.3)', async () => {
    // Prepare: begun before defect 3 was fixed, when the person's email was the identifier
    const { ledger, customerio, deps } = setup();
    ledger.seed(storedRecord({ decision: 'ACCEPTED', customerEmail: 'someone.else@example.com' }));

    // Act
    await fulfilReferral({ ...REFERRAL, customerEmail: 'someone.else@example.com' }, deps, attempt());

    // Assess
    expect(customerio.sent.map((sent) => sent.recipient)).toEqual([REFERRAL.redeemerEmail]);
  });

  it('reports each field of the message that differs from the ledger', async () => {
    // Prepare
    const { ledger, deps } = setup();
    ledger.seed(storedRecord({ decision: 'ACCEPTED', distinctId: REFERRAL.redeemerEmail }));
    const reported: string[][] = [];
    deps.onMismatch = (mismatch) => reported.push(mismatch.map((m) => m.field));

    // Act
    await fulfilReferral(otherMessage, deps, attempt());

    // Assess
    expect(reported).toEqual([['referrerEmail', 'redeemerEmail', 'customerEmail', 'distinctId']]);
  });

  it('reports nothing for a redelivery of the same message', async () => {
    // Prepare
    const { deps } = setup();
    const reported: unknown[] = [];
    deps.onMismatch = (mismatch) => reported.push(mismatch);

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());
    await fulfilReferral(REFERRAL, deps, attempt('request-2/message-2'));

    // Assess
    expect(reported).toEqual([]);
  });

  it('pays a referral begun as gift_card with the gift-card issuer and amount it began with, whatever the config says now', async () => {
    // Prepare: REWARD_TYPE and REWARD_AMOUNT changed after begin
    const { ledger, shopify: giftCards, deps } = setup();
    ledger.seed(storedRecord({ decision: 'ACCEPTED', rewardType: 'gift_card', rewardAmount: '25.00' }));
    const discounts = new FakeShop();
    Object.assign(deps, {
      rewardType: 'discount_code',
      rewardAmount: '50.00',
      shopify: discounts,
      issuers: { gift_card: giftCards, discount_code: discounts },
    });

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(discounts.creates).toEqual([]);
    expect(giftCards.creates.map((input) => input.amount)).toEqual(['25.00', '25.00']);
  });

  it('dead-letters, paying nothing, a referral whose reward type this worker cannot issue', async () => {
    // Prepare
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({ decision: 'ACCEPTED', rewardType: 'discount_code', rewardAmount: '25.00' }));

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect((error as PermanentError).reason).toBe('reward_type_unavailable');
    expect(shopify.creates).toEqual([]);
  });
});

describe('fulfilReferral: per-person claims held by other referrals (#10.1)', () => {
  const OTHER = '0193a8f2-6c1d-7b4e-9a55-000000000002';
  const rules = { maxRewardsPerReferrer: 1, blockedDomains: [], referralSignatures: { mode: 'off' as const } };
  const otherRecord = (overrides: Partial<LedgerRecord>) => storedRecord({ pk: `referral#${OTHER}`, eventId: OTHER, ...overrides });

  it('waits (retryable, nothing decided) while the referral holding the redeemer is undecided', async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.rules = rules;
    ledger.seed(otherRecord({}));
    ledger.redeemers.set('redeemer@example.com', OTHER);

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(ledger.records.get(EVENT_ID)?.decision).toBeUndefined();
  });

  it('hints a wait of seconds while the referral holding the redeemer is undecided', async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.rules = rules;
    ledger.seed(otherRecord({}));
    ledger.redeemers.set('redeemer@example.com', OTHER);

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect((error as RetryableError).retryAfterMs).toBe(CONTENTION_RETRY_MS);
  });

  it('refuses for good when the referral holding the redeemer was accepted', async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.rules = rules;
    ledger.seed(otherRecord({ decision: 'ACCEPTED' }));
    ledger.redeemers.set('redeemer@example.com', OTHER);

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'rejected', reason: 'redeemer_already_rewarded' });
  });

  it("takes over the redeemer from a refused referral's leftover claim", async () => {
    // Prepare: the holder was refused and crashed before giving the claim back
    const { ledger, deps } = setup();
    deps.rules = rules;
    ledger.seed(otherRecord({ decision: 'REJECTED', rejectionReason: 'referrer_cap_reached' }));
    ledger.redeemers.set('redeemer@example.com', OTHER);

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(ledger.redeemers.get('redeemer@example.com')).toBe(EVENT_ID);
  });

  it("waits while the referrer's last slot is held by an undecided referral", async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.rules = rules;
    ledger.seed(otherRecord({}));
    ledger.referrers.set('referrer@example.com', new Set([OTHER]));

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it("hints a wait of seconds while the referrer's last slot is held by an undecided referral", async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.rules = rules;
    ledger.seed(otherRecord({}));
    ledger.referrers.set('referrer@example.com', new Set([OTHER]));

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect((error as RetryableError).retryAfterMs).toBe(CONTENTION_RETRY_MS);
  });

  it("gives the redeemer back when refused for the referrer's cap", async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.rules = rules;
    ledger.seed(otherRecord({ decision: 'ACCEPTED' }));
    ledger.referrers.set('referrer@example.com', new Set([OTHER]));

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'rejected', reason: 'referrer_cap_reached' });
    expect(ledger.redeemers.has('redeemer@example.com')).toBe(false);
  });

  it('gives a referrer slot back when refused for the redeemer after an earlier attempt took the slot', async () => {
    // Prepare: an earlier attempt of ours counted a slot; the redeemer is another accepted referral's
    const { ledger, deps } = setup();
    deps.rules = { maxRewardsPerReferrer: 5, blockedDomains: [], referralSignatures: { mode: 'off' } };
    ledger.seed(storedRecord({}));
    ledger.seed(otherRecord({ decision: 'ACCEPTED' }));
    ledger.redeemers.set('redeemer@example.com', OTHER);
    ledger.referrers.set('referrer@example.com', new Set([EVENT_ID]));

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'rejected', reason: 'redeemer_already_rewarded' });
    expect(ledger.referrers.get('referrer@example.com')?.has(EVENT_ID)).toBe(false);
  });
});

describe('fulfilReferral: a lost create answered "taken" while our card is not searchable yet (closing review, defect 10)', () => {
  const STRANGER = { id: 'gid://shopify/GiftCard/stranger', note: 'bought at the till' };
  const MINUTE = 60_000;

  it('keeps the code, records the sighting and retries instead of issuing a second card', async () => {
    // Prepare: the referrer's create lands but its answer is lost; our card is not searchable, a stranger's with the same last characters is
    const { ledger, shopify, customerio, deps } = setup();
    shopify.loseResponses((input) => roleOf(input) === 'referrer');
    shopify.unsearchable.add('CODE0001');
    shopify.lookupNoise = [STRANGER];

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(shopify.codesFor('referrer')).toEqual(['CODE0001', 'CODE0001']);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toEqual([]);
    expect(ledger.records.get(EVENT_ID)).toMatchObject({
      referrerCode: 'CODE0001',
      referrerTakenSeenCode: 'CODE0001',
      referrerTakenSeenAt: expect.any(String),
    });
    expect(customerio.sent).toEqual([]);
  });

  it('finds the card as ours on the retry once it is searchable, paying it once', async () => {
    // Prepare: the first attempt saw the code taken by a stranger only
    const { ledger, shopify, customerio, deps } = setup();
    shopify.loseResponses((input) => roleOf(input) === 'referrer');
    shopify.unsearchable.add('CODE0001');
    shopify.lookupNoise = [STRANGER];
    await failure(fulfilReferral(REFERRAL, deps, attempt('request-1/message-1')));
    await release(ledger, EVENT_ID, 'request-1/message-1', 'retry');
    shopify.unsearchable.clear();

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt('request-2/message-1'));

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect([...shopify.cards.values()].filter((card) => parseGiftCardNote(card.note)?.role === 'referrer')).toHaveLength(1);
    expect(ledger.records.get(EVENT_ID)?.referrerCardId).toBe(shopify.card('CODE0001')?.id);
    expect(customerio.sent[0].referrerCode).toBe('CODE0001');
  });

  it('retries without replacing while the sighting of an earlier attempt is younger than the confirmation window', async () => {
    // Prepare: an earlier attempt sent EARLIER1 and saw it taken 5 minutes ago
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({ referrerTakenSeenCode: 'EARLIER1', referrerTakenSeenAt: new Date(NOW - 5 * MINUTE).toISOString() }));
    shopify.seedCard('EARLIER1', STRANGER);

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode' || call.op === 'recordTakenSeen')).toEqual([]);
    expect(ledger.records.get(EVENT_ID)?.referrerCode).toBe('EARLIER1');
  });

  it('hints the wait for the rest of the confirmation window, so the retries are not spent inside it', async () => {
    // Prepare: an earlier attempt sent EARLIER1 and saw it taken 5 minutes ago
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({ referrerTakenSeenCode: 'EARLIER1', referrerTakenSeenAt: new Date(NOW - 5 * MINUTE).toISOString() }));
    shopify.seedCard('EARLIER1', STRANGER);

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect((error as RetryableError).retryAfterMs).toBe(5 * MINUTE);
  });

  it('replaces the code once it has answered "taken, not ours" for longer than the confirmation window', async () => {
    // Prepare: the sighting is 11 minutes old (the default window is 10 minutes)
    const { ledger, shopify, customerio, deps } = setup();
    ledger.seed(storedRecord({ referrerTakenSeenCode: 'EARLIER1', referrerTakenSeenAt: new Date(NOW - 11 * MINUTE).toISOString() }));
    shopify.seedCard('EARLIER1', STRANGER);

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(ledger.calls).toContainEqual(expect.objectContaining({ op: 'replaceCode', role: 'referrer', oldCode: 'EARLIER1' }));
    expect(customerio.sent[0].referrerCode).not.toBe('EARLIER1');
  });

  it('confirms a sighting of an earlier code afresh: a sighting concerns only the code it names', async () => {
    // Prepare: an old sighting of a code already replaced; the current one was sent by an earlier attempt
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({ referrerTakenSeenCode: 'OLDCODE1', referrerTakenSeenAt: new Date(NOW - 60 * MINUTE).toISOString() }));
    shopify.seedCard('EARLIER1', STRANGER);

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, attempt()));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toEqual([]);
    expect(ledger.records.get(EVENT_ID)).toMatchObject({ referrerCode: 'EARLIER1', referrerTakenSeenCode: 'EARLIER1' });
  });
});

describe("fulfilReferral: the lifecycle gate's pay verdict is stored (closing review, defect 11)", () => {
  /** A worker lifecycle port on the memory ledger: parking sets the status and frees the lease, as the DynamoDB one does. */
  function lifecycle(ledger: MemoryLedger, config: LifecycleConfig) {
    const port: GuardCounters = {
      count: async () => true,
      uncount: async () => true,
      velocity: async () => 1,
    };
    return { parked: () => parkedBy(ledger), deps: { config, ledger: port } };
  }

  it('never parks, on a retry under a hold turned on since, a referral whose first create may have landed', async () => {
    // Prepare: no hold; the first attempt passes the gate, both creates land but both answers are lost (no card id recorded)
    const { ledger, shopify, deps } = setup({ baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 1 });
    ledger.now = () => NOW;
    const config: LifecycleConfig = { holdMs: 0, reviewDisposable: false };
    const gate = lifecycle(ledger, config);
    deps.lifecycle = gate.deps;
    shopify.loseResponses(() => true, 2);
    await failure(fulfilReferral(REFERRAL, deps, attempt('request-1/message-1')));
    await release(ledger, EVENT_ID, 'request-1/message-1', 'retry');
    config.holdMs = 14 * DAY;

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt('request-2/message-1'));

    // Assess
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(gate.parked()).toEqual([]);
    expect(shopify.cards.size).toBe(2);
    expect(ledger.records.get(EVENT_ID)).toMatchObject({
      referrerCardId: shopify.card('CODE0001')?.id,
      redeemerCardId: shopify.card('CODE0002')?.id,
    });
  });

  it('stores the pay verdict in the decision write: no extra ledger write', async () => {
    // Prepare
    const { ledger, deps } = setup();
    deps.lifecycle = lifecycle(ledger, { holdMs: 0, reviewDisposable: false }).deps;

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(ledger.calls.map((call) => call.op)).toEqual(['begin', 'decide', 'recordCard', 'recordCard', 'recordCustomerIo']);
    expect(ledger.calls[1]).toMatchObject({ op: 'decide', decision: 'ACCEPTED', gatePassed: true });
  });

  it('stores a pay verdict reached on a record decided earlier before the first Shopify call', async () => {
    // Prepare: an earlier attempt decided (to hold) and stopped before parking; the hold is off now
    const { ledger, shopify, deps } = setup();
    ledger.seed(storedRecord({ decision: 'ACCEPTED' }));
    deps.lifecycle = lifecycle(ledger, { holdMs: 0, reviewDisposable: false }).deps;
    const passedAtCreate: (string | undefined)[] = [];
    shopify.onCreate = async (input, issue) => {
      passedAtCreate.push(ledger.records.get(EVENT_ID)?.gatePassedAt);
      return issue(input);
    };

    // Act
    await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(ledger.calls.filter((call) => call.op === 'decide' && call.gatePassed)).toHaveLength(1);
    expect(passedAtCreate).toEqual([expect.any(String), expect.any(String)]);
  });

  it('parks a referral whose gate says hold, storing no pay verdict', async () => {
    // Prepare
    const { ledger, shopify, deps } = setup();
    ledger.now = () => NOW;
    const gate = lifecycle(ledger, { holdMs: 14 * DAY, reviewDisposable: false });
    deps.lifecycle = gate.deps;

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toMatchObject({ outcome: 'held' });
    expect(gate.parked()).toEqual([expect.objectContaining({ status: 'HELD' })]);
    expect(ledger.records.get(EVENT_ID)?.gatePassedAt).toBeUndefined();
    expect(shopify.creates).toEqual([]);
  });
});

describe('fulfilReferral: only referrals the app vouched for are paid', () => {
  const KEY = 'unit-referral-signing-key-0123456789abcdef';
  const rules: ProgramRules = { maxRewardsPerReferrer: 10, blockedDomains: [], referralSignatures: { mode: 'required', key: KEY } };
  const GENUINE_ID = '0193a8f2-6c1d-7b4e-9a55-000000000003';
  const signed = (referral: Referral): Referral => ({ ...referral, referralSignature: signReferral(KEY, referral) });

  it('refuses a forged (unsigned) event naming a real redeemer without claiming the redeemer or issuing anything', async () => {
    // Prepare
    const { ledger, shopify, customerio, deps } = setup();
    deps.rules = rules;

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'rejected', reason: 'unsigned_referral' });
    expect(ledger.records.get(EVENT_ID)).toMatchObject({ status: 'REJECTED', rejectionReason: 'unsigned_referral' });
    expect(ledger.redeemers.size).toBe(0);
    expect(ledger.referrers.size).toBe(0);
    expect(shopify.creates).toEqual([]);
    expect(customerio.sent).toEqual([]);
  });

  it("pays the redeemer's genuine referral after a forged one used their email", async () => {
    // Prepare: the forgery arrives first and is refused
    const { ledger, shopify, deps } = setup();
    deps.rules = rules;
    await fulfilReferral({ ...REFERRAL, referralSignature: 'forged-signature' }, deps, attempt());
    const genuine = signed({ ...REFERRAL, eventId: GENUINE_ID });

    // Act
    const outcome = await fulfilReferral(genuine, deps, attempt('request-2/message-2'));

    // Assess
    expect(ledger.records.get(EVENT_ID)).toMatchObject({ status: 'REJECTED', rejectionReason: 'bad_referral_signature' });
    expect(outcome).toEqual({ outcome: 'completed' });
    expect(ledger.redeemers.get('redeemer@example.com')).toBe(GENUINE_ID);
    expect(shopify.creates).toHaveLength(2);
  });

  it('checks the signature against the people the ledger fixed at begin, not those of a later message reusing the uuid', async () => {
    // Prepare: begun (then crashed) for REFERRAL's people; a later message names another redeemer, signed for them
    const { ledger, shopify, deps } = setup();
    deps.rules = rules;
    ledger.seed(storedRecord({}));
    const other = signed({ ...REFERRAL, redeemerEmail: 'mallory@example.net', customerEmail: 'mallory@example.net' });

    // Act
    const outcome = await fulfilReferral(other, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'rejected', reason: 'bad_referral_signature' });
    expect(shopify.creates).toEqual([]);
  });
});

describe('fulfilReferral: an approved referral taken up from review', () => {
  /** An approved referral, as `review approve` leaves it on a record parked without `holdUntil`: HELD, due now. */
  const approved = (acceptedAgoMs: number) =>
    storedRecord({
      status: 'HELD',
      decision: 'ACCEPTED',
      releaseAt: NOW - 1_000,
      parkedAt: new Date(NOW - acceptedAgoMs).toISOString(),
      reviewDecision: 'approved',
      rewardType: 'gift_card',
      rewardAmount: '25.00',
      createdAt: new Date(NOW - acceptedAgoMs).toISOString(),
    } as Partial<LedgerRecord>);

  /** The worker's lifecycle port on the memory ledger, its counters the memory twin's; `failCounts` budget writes throw first. */
  function lifecycle(ledger: MemoryLedger, config: LifecycleConfig, failCounts = 0) {
    let failures = failCounts;
    const port: GuardCounters = {
      count: async (counter, eventId, options) => {
        if (failures-- > 0) throw new RetryableError('simulated: the budget write timed out');
        return ledger.count(counter, eventId, options);
      },
      uncount: (counter, eventId) => ledger.uncount(counter, eventId),
      velocity: async () => 1,
    };
    return { parked: () => parkedBy(ledger), deps: { config, ledger: port } };
  }

  it('holds it again, issuing nothing, while its acceptance plus REWARD_HOLD is still ahead', async () => {
    // Prepare: accepted an hour ago, a 14-day hold
    const { ledger, shopify, deps } = setup();
    ledger.now = () => NOW;
    ledger.seed(approved(3_600_000));
    const gate = lifecycle(ledger, { holdMs: 14 * DAY, reviewDisposable: false });
    deps.lifecycle = gate.deps;

    // Act
    const outcome = await fulfilReferral(REFERRAL, deps, attempt());

    // Assess
    expect(outcome).toEqual({ outcome: 'held', releaseAt: NOW - 3_600_000 + 14 * DAY });
    expect(gate.parked()).toEqual([expect.objectContaining({ status: 'HELD', releaseAt: NOW - 3_600_000 + 14 * DAY })]);
    expect(shopify.creates).toEqual([]);
    expect(await ledger.spent(`day#${new Date(NOW - 3_600_000).toISOString().slice(0, 10)}`)).toEqual({ cents: 0, referrals: 0 });
  });

  it('counts it in its day and month before the first Shopify call; a failed count issues nothing', async () => {
    // Prepare: the hold has passed; the first budget write fails
    const { ledger, shopify, deps } = setup();
    ledger.now = () => NOW;
    ledger.seed(approved(15 * DAY));
    deps.lifecycle = lifecycle(ledger, { holdMs: 14 * DAY, reviewDisposable: false }, 1).deps;
    const createdAt = new Date(NOW - 15 * DAY).toISOString();
    const countedAtCreate: number[] = [];
    shopify.onCreate = async (input, issue) => {
      countedAtCreate.push((await ledger.spent(`month#${createdAt.slice(0, 7)}`)).cents);
      return issue(input);
    };

    // Act
    const first = await failure(fulfilReferral(REFERRAL, deps, attempt('request-1/message-1')));
    const createsAfterFailure = shopify.creates.length;
    await release(ledger, EVENT_ID, 'request-1/message-1', 'retry');
    const second = await fulfilReferral(REFERRAL, deps, attempt('request-2/message-1'));

    // Assess
    expect(first).toBeInstanceOf(RetryableError);
    expect(createsAfterFailure).toBe(0);
    expect(second).toEqual({ outcome: 'completed' });
    expect(countedAtCreate).toEqual([5_000, 5_000]);
    expect(await ledger.spent(`day#${createdAt.slice(0, 10)}`)).toEqual({ cents: 5_000, referrals: 1 });
  });
});

describe('fulfilReferral: a message reusing the uuid of a referral begun for another referrer', () => {
  const KEY = 'unit-referral-signing-key-0123456789abcdef';
  const rules: ProgramRules = { maxRewardsPerReferrer: 0, blockedDomains: [], referralSignatures: { mode: 'required', key: KEY } };
  const OWNERS: Record<string, { email: string; canonical: string }> = {
    AAAAAAAAAA: { email: 'alice@example.com', canonical: 'alice@example.com' },
    XXXXXXXXXX: { email: 'mallory@example.com', canonical: 'mallory@example.com' },
  };
  const referralCodes = {
    required: false,
    store: {
      codeItem: async (code: string) => OWNERS[code.toUpperCase()],
      codeOf: async (canonical: string) => Object.entries(OWNERS).find(([, owner]) => owner.canonical === canonical)?.[0],
    },
  };
  /** The app's genuine referral: Alice's code, the redeemer, signed. */
  const genuine = (): Referral => {
    const unsigned = { ...REFERRAL, referrerEmail: '', referralCode: 'aaaaaaaaaa' };
    return { ...unsigned, referralSignature: signReferral(KEY, unsigned) };
  };

  it.each([
    ['by email', { referrerEmail: 'mallory@example.com' }],
    ['by her own code', { referrerEmail: '', referralCode: 'xxxxxxxxxx' }],
  ])('never pays the forger when a forged event naming her %s began the record and stopped before deciding', async (_how, forgedPeople) => {
    // Prepare: the forged, unsigned event with the genuine uuid begins, then its attempt dies
    const { ledger, shopify, customerio, deps } = setup();
    deps.rules = rules;
    deps.referralCodes = referralCodes;
    const crashing: FulfilDeps = {
      ...deps,
      checkpoint: (step) => {
        if (step === 'begun') throw new Error('simulated: the Lambda timed out');
      },
    };
    await failure(fulfilReferral({ ...REFERRAL, ...forgedPeople }, crashing, attempt('request-1/message-1')));
    await release(ledger, EVENT_ID, 'request-1/message-1', 'timed out');

    // Act: the genuine message, signed over Alice's code, arrives with the same uuid
    const outcome = await fulfilReferral(genuine(), deps, attempt('request-2/message-2'));

    // Assess
    expect(outcome).toEqual({ outcome: 'rejected', reason: 'bad_referral_signature' });
    expect(shopify.creates).toEqual([]);
    expect(customerio.sent).toEqual([]);
    expect(ledger.redeemers.size).toBe(0);
  });
});
