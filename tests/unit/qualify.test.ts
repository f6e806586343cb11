import { randomUUID } from 'node:crypto';
import type { LedgerRecord } from '../../lib/domain/ledger-port';
import { fromStates, TRANSITIONS } from '../../lib/domain/machine';
import { parsePersonEvent, type PersonEvent } from '../../lib/domain/person-event';
import { releaseDue } from '../../lib/domain/lifecycle/release';
import {
  capturedAt,
  handlePersonEvent,
  personKeys,
  QUALIFY_GRACE_MS,
  sameRedeemer,
  type QualificationRules,
} from '../../lib/domain/qualify';
import type { Referral } from '../../lib/domain/referral';
import { fulfilReferral, type FulfilDeps, type FulfilResult } from '../../lib/domain/rewards';
import { expire, qualify } from '../../lib/domain/steps';
import { signPersonEvent, verifyPersonEvent } from '../../lib/domain/vouch';
import { loadQualificationConfig } from '../../lib/infra/config';
import { parseWebhook } from '../../lib/inbound/posthog-webhook';
import { begunRecord } from '../support/ledger-records';
import { FakeShop } from '../support/fake-shop';
import { MemoryLedger } from '../support/memory-ledger';

const KEY = 'k'.repeat(32);
const OLD_KEY = 'o'.repeat(32);
const AT = '2026-11-20T10:00:00.000Z';
const RULES: QualificationRules = {
  qualifyEvent: 'subscription paid',
  withinMs: 30 * 86_400_000,
  revokeEvent: 'refund',
  revokePaid: false,
};

function referral(overrides: Partial<Referral> = {}): Referral {
  return {
    v: 1,
    eventId: randomUUID(),
    eventName: 'referral redeemed',
    referrerEmail: 'ada@example.com',
    redeemerEmail: 'grace@example.org',
    customerEmail: 'grace@example.org',
    personId: 'person-1',
    distinctId: 'grace',
    occurredAt: AT,
    ...overrides,
  };
}

function personEvent(overrides: Partial<PersonEvent> = {}): PersonEvent {
  const event: PersonEvent = {
    v: 1,
    kind: 'person-event',
    role: 'qualify',
    eventId: randomUUID(),
    eventName: 'subscription paid',
    occurredAt: '2026-11-21T10:00:00.000Z',
    personId: 'person-1',
    distinctId: 'grace',
    ...overrides,
  };
  return { ...event, signature: overrides.signature ?? signPersonEvent(KEY, event) };
}

/** A referral waiting in the memory ledger, its keys taken, as the worker leaves it. */
async function waiting(ledger: MemoryLedger, queued: Referral): Promise<LedgerRecord> {
  const record = begunRecord(queued.eventId, AT, {
    status: 'AWAITING',
    decision: 'ACCEPTED',
    referrerEmail: queued.referrerEmail,
    redeemerEmail: queued.redeemerEmail,
    customerEmail: queued.customerEmail,
    parkedMessage: JSON.stringify(queued),
    qualifyBy: Date.parse(AT) + RULES.withinMs,
    lifecycleQueue: 'awaiting',
    lifecycleAt: Date.parse(AT) + RULES.withinMs,
  });
  ledger.seed(record);
  for (const person of personKeys({ personId: queued.personId, distinctId: queued.distinctId, email: queued.redeemerEmail }))
    await ledger.count({ kind: 'person', person }, queued.eventId);
  return record;
}

function deps(ledger: MemoryLedger): FulfilDeps {
  return {
    ledger,
    qualification: RULES,
    rules: { maxRewardsPerReferrer: 0, blockedDomains: [], referralSignatures: { mode: 'required', key: KEY } },
  } as unknown as FulfilDeps;
}

const CONTEXT = { owner: 'worker-1', deadline: Date.now() + 60_000 };
const continued = (): jest.Mock<Promise<FulfilResult>, [Referral]> =>
  jest.fn<Promise<FulfilResult>, [Referral]>(async () => ({ outcome: 'completed' }));

describe('the machine: waiting for qualification', () => {
  it('moves a waiting referral on its qualifying event, at its deadline, or on a cancel, and a not qualified one nowhere', () => {
    expect(TRANSITIONS.RECEIVED.await).toBe('AWAITING_QUALIFICATION');
    expect(TRANSITIONS.AWAITING_QUALIFICATION).toEqual({ qualify: 'RECEIVED', expire: 'NOT_QUALIFIED', cancel: 'REVOKED' });
    expect(TRANSITIONS.NOT_QUALIFIED).toEqual({});
  });

  it('moves only from the stored AWAITING status to qualify or expire', () => {
    expect([fromStates('qualify'), fromStates('expire')]).toEqual([['AWAITING'], ['AWAITING']]);
  });

  it('lets only one of expiry and qualification win, whichever writes first', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const first = await waiting(ledger, referral());
    const second = await waiting(ledger, referral({ personId: 'person-2', distinctId: 'g2', redeemerEmail: 'g2@example.org' }));

    // Act
    const expired = await expire(ledger, first.eventId, Number(first.qualifyBy));
    const lateQualify = await qualify(ledger, first.eventId, randomUUID(), Number(first.qualifyBy));
    const qualified = await qualify(ledger, second.eventId, randomUUID(), Number(second.qualifyBy));
    const lateExpire = await expire(ledger, second.eventId, Number(second.qualifyBy));

    // Assess
    expect([expired?.status, lateQualify, qualified?.status, lateExpire]).toEqual(['NOT_QUALIFIED', undefined, 'IN_PROGRESS', undefined]);
    expect((await ledger.get(second.eventId))?.lifecycleQueue).toBeUndefined();
  });
});

describe('who the redeemer is', () => {
  it.each([
    ['the same person id', { personId: 'person-1', distinctId: 'other' }, true],
    ['another person id, whatever the distinct id', { personId: 'person-9', distinctId: 'grace' }, false],
    ['no person id on the event: the distinct id', { distinctId: 'grace' }, true],
    ['no person id on the event: another distinct id, though the email matches', { distinctId: 'x', email: 'grace@example.org' }, false],
    ['neither id on the event: the email, canonical', { email: ' Grace@Example.org ' }, true],
    ['neither id on the event: another email', { email: 'mallory@example.org' }, false],
  ])('%s', (_name, who, same) => {
    expect(sameRedeemer(referral(), who)).toBe(same);
  });

  it('names a person by id, distinct id and canonical email, strongest first', () => {
    expect(personKeys({ personId: 'p', distinctId: 'd', email: 'Grace@Example.org' })).toEqual([
      'id:p',
      'distinct:d',
      'email:grace@example.org',
    ]);
  });

  it("never lets a capture time in the future stretch the window: the first attempt's time bounds it", () => {
    expect(capturedAt({ occurredAt: '2030-01-01T00:00:00.000Z' }, { createdAt: AT })).toBe(Date.parse(AT));
    expect(capturedAt({ occurredAt: '2026-11-19T00:00:00.000Z' }, { createdAt: AT })).toBe(Date.parse('2026-11-19T00:00:00.000Z'));
    expect(capturedAt({}, { createdAt: AT })).toBe(Date.parse(AT));
  });
});

describe('person event signatures', () => {
  const event = { eventName: 'subscription paid', distinctId: 'grace', eventId: '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61' };

  it('vouches for the event it was made for, under the key or the key being rotated out', () => {
    expect(verifyPersonEvent(KEY, event, signPersonEvent(KEY, event))).toBe('vouched');
    expect(verifyPersonEvent(KEY, event, signPersonEvent(OLD_KEY, event), OLD_KEY)).toBe('vouched');
  });

  it('refuses a signature of another event, person or key, and a missing one', () => {
    const signature = signPersonEvent(KEY, event);
    expect(verifyPersonEvent(KEY, { ...event, eventId: randomUUID() }, signature)).toBe('bad_signature');
    expect(verifyPersonEvent(KEY, { ...event, distinctId: 'mallory' }, signature)).toBe('bad_signature');
    expect(verifyPersonEvent(KEY, event, signPersonEvent(OLD_KEY, event))).toBe('bad_signature');
    expect(verifyPersonEvent(KEY, event, undefined)).toBe('unsigned');
  });
});

describe('handlePersonEvent', () => {
  it('qualifies the waiting referral of the same person and continues it once', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const queued = referral();
    await waiting(ledger, queued);
    const fulfil = continued();
    const event = personEvent();

    // Act
    const result = await handlePersonEvent(event, deps(ledger), CONTEXT, fulfil);
    const again = await handlePersonEvent(event, deps(ledger), CONTEXT, fulfil);

    // Assess
    expect(result).toMatchObject({ outcome: 'qualified', referral: queued.eventId });
    expect(await ledger.get(queued.eventId)).toMatchObject({ status: 'IN_PROGRESS', qualifyingEventId: event.eventId });
    // The retry finds it qualified and unfinished (the stub paid nothing), so it continues it again: fulfilment is idempotent.
    expect(again.outcome).toBe('qualified');
    expect(fulfil.mock.calls.map(([continuedReferral]) => continuedReferral.eventId)).toEqual([queued.eventId, queued.eventId]);
    expect(ledger.personEvents.get(event.eventId)?.role).toBe('qualify');
  });

  it('notes a qualifying event of a person with no referral, and acknowledges it', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const event = personEvent();

    // Act
    const result = await handlePersonEvent(event, deps(ledger), CONTEXT, continued());

    // Assess
    expect(result).toEqual({ outcome: 'no-referral' });
    expect(await ledger.qualifying('id:person-1')).toMatchObject({ eventId: event.eventId, occurredAt: Date.parse(event.occurredAt) });
  });

  it('does nothing with an event past the deadline, or one its signature does not vouch for', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const queued = referral();
    await waiting(ledger, queued);

    // Act
    const late = await handlePersonEvent(personEvent({ occurredAt: '2027-01-30T00:00:00.000Z' }), deps(ledger), CONTEXT, continued());
    const forged = await handlePersonEvent(
      personEvent({ signature: signPersonEvent(OLD_KEY, personEvent()) }),
      deps(ledger),
      CONTEXT,
      continued(),
    );

    // Assess
    expect(late).toMatchObject({ outcome: 'nothing', status: 'AWAITING' });
    expect(forged).toEqual({ outcome: 'unvouched', reason: 'bad_signature' });
    expect((await ledger.get(queued.eventId))?.status).toBe('AWAITING');
  });

  it('refuses a vouched event replayed under a new timestamp when its UUIDv7 says when it was made', async () => {
    // Prepare: a UUIDv7 made on 2026-10-01, captured (and signed) then, sent again dated after the referral
    const ledger = new MemoryLedger();
    const queued = referral();
    await waiting(ledger, queued);
    const madeAt = Date.parse('2026-10-01T00:00:00.000Z');
    const v7 = `${madeAt
      .toString(16)
      .padStart(12, '0')
      .replace(/^(.{8})(.{4})$/, '$1-$2')}-7abc-8def-0123456789ab`;

    // Act
    const replayed = await handlePersonEvent(personEvent({ eventId: v7 }), deps(ledger), CONTEXT, continued());
    const genuine = await handlePersonEvent(
      personEvent({ eventId: v7, occurredAt: '2026-10-01T00:05:00.000Z' }),
      deps(ledger),
      CONTEXT,
      continued(),
    );

    // Assess: refused, and the genuine (old) event is from before the referral: it never qualifies it
    expect(replayed).toEqual({ outcome: 'unvouched', reason: 'replayed' });
    expect(genuine).toMatchObject({ outcome: 'nothing', status: 'AWAITING' });
    expect((await ledger.get(queued.eventId))?.status).toBe('AWAITING');
  });

  it('marks an unsigned or badly signed event as handled, so the catch-up stops queueing it every run', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const unsigned = { ...personEvent(), signature: undefined };
    const badlySigned = personEvent({ signature: signPersonEvent(OLD_KEY, personEvent()) });

    // Act
    await handlePersonEvent(unsigned, deps(ledger), CONTEXT, continued());
    await handlePersonEvent(badlySigned, deps(ledger), CONTEXT, continued());

    // Assess
    expect(await ledger.personEventMarked(unsigned.eventId)).toBe(true);
    expect(await ledger.personEventMarked(badlySigned.eventId)).toBe(true);
  });

  it('does nothing once its setting is turned off', async () => {
    const ledger = new MemoryLedger();
    const result = await handlePersonEvent(
      personEvent(),
      { ...deps(ledger), qualification: { ...RULES, qualifyEvent: undefined } },
      CONTEXT,
      continued(),
    );
    expect(result).toEqual({ outcome: 'off' });
  });

  it('cancels a waiting referral on a refund after it, and not on a refund from before it', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const queued = referral();
    await waiting(ledger, queued);
    const refund = (occurredAt: string) => personEvent({ role: 'revoke', eventName: 'refund', occurredAt });

    // Act
    const before = await handlePersonEvent(refund('2026-11-19T00:00:00.000Z'), deps(ledger), CONTEXT, continued());
    const after = await handlePersonEvent(refund('2026-11-22T00:00:00.000Z'), deps(ledger), CONTEXT, continued());

    // Assess
    expect(before).toMatchObject({ outcome: 'nothing', status: 'AWAITING' });
    expect(after).toEqual({ outcome: 'cancelled', referral: queued.eventId });
    expect(await ledger.get(queued.eventId)).toMatchObject({ status: 'REVOKED', revokedBeforePayout: true, revokeReason: 'refund' });
  });
});

describe('reading person events', () => {
  const options = { referralEvent: 'referral redeemed', referrerEmailProperty: 'referrer_email', redeemerEmailProperty: 'redeemer_email' };
  const body = (event: Record<string, unknown>) =>
    JSON.stringify({
      event: { uuid: '0193A8F2-6C1D-7B4E-9A55-2F0D3C4B5A61', event: 'subscription paid', distinct_id: 'grace', ...event },
      person: { id: 'p-1', properties: { email: 'Grace@Example.org' } },
    });

  it('reads QUALIFY_EVENT as a person event: who, when, the signature, the uuid lowercased', () => {
    const parsed = parseWebhook(body({ timestamp: '2026-11-21T10:00:00Z', properties: { referral_signature: 'sig' } }), {
      ...options,
      qualifyEvent: 'subscription paid',
    });
    expect(parsed).toEqual({
      kind: 'person-event',
      event: {
        v: 1,
        kind: 'person-event',
        role: 'qualify',
        eventId: '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61',
        eventName: 'subscription paid',
        occurredAt: '2026-11-21T10:00:00.000Z',
        personId: 'p-1',
        distinctId: 'grace',
        email: 'grace@example.org',
        signature: 'sig',
      },
    });
  });

  it('ignores it while QUALIFY_EVENT is unset', () => {
    expect(parseWebhook(body({ timestamp: AT }), options)).toMatchObject({ kind: 'ignored' });
  });

  it('refuses one without a time or a uuid, with a reason', () => {
    const on = { ...options, revokeEvent: 'subscription paid' };
    expect(() => parseWebhook(body({}), on)).toThrow(expect.objectContaining({ statusCode: 422, code: 'invalid_event_timestamp' }));
    expect(() => parseWebhook(body({ uuid: undefined, timestamp: AT }), on)).toThrow(
      expect.objectContaining({ statusCode: 422, code: 'missing_event_uuid' }),
    );
  });

  it('reads back from the queue what ingest queued, and nothing that is not a person event', () => {
    const event = personEvent();
    expect(parsePersonEvent(JSON.stringify({ ...event, extra: 'dropped' }))).toEqual(event);
    expect(parsePersonEvent(JSON.stringify({ ...event, role: 'other' }))).toBeUndefined();
    expect(parsePersonEvent(JSON.stringify(referral()))).toBeUndefined();
  });
});

describe('pay-on-value settings', () => {
  it('is off by default: no qualifying or refund event, a 30-day window', () => {
    expect(loadQualificationConfig({})).toEqual({ withinMs: 30 * 86_400_000, revokePaid: false });
  });

  it('refuses a qualifying or refund event named as the referral event, which would be read as a referral', () => {
    expect(() => loadQualificationConfig({ QUALIFY_EVENT: 'referral redeemed' })).toThrow(/differ from REFERRAL_EVENT/);
    expect(() => loadQualificationConfig({ REFERRAL_EVENT: 'signup', REVOKE_EVENT: 'signup' })).toThrow(/differ from REFERRAL_EVENT/);
  });

  it('names every problem at once', () => {
    expect(() => loadQualificationConfig({ QUALIFY_WITHIN: '30', REVOKE_PAID: 'yes', QUALIFY_WHERE: 'true' })).toThrow(
      /QUALIFY_WITHIN[\s\S]*REVOKE_PAID[\s\S]*QUALIFY_WHERE/,
    );
  });
});

describe('the releaser: expiry', () => {
  const releaser = (ledger: MemoryLedger, posthog: { track: jest.Mock }, status: { sendStatus: jest.Mock }) => ({
    ledger,
    index: ledger,
    enqueue: async () => undefined,
    now: () => Date.parse(AT) + RULES.withinMs + QUALIFY_GRACE_MS + 1,
    posthog,
    status,
  });

  it('finishes an expiry on the next run when its capture failed after the write, expiring it only once', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const queued = referral();
    await waiting(ledger, queued);
    await ledger.count({ kind: 'redeemer', person: 'grace@example.org' }, queued.eventId);
    const posthog = { track: jest.fn().mockRejectedValueOnce(new Error('PostHog is down')).mockResolvedValue(undefined) };
    const status = { sendStatus: jest.fn().mockResolvedValue(undefined) };

    // Act
    const first = await releaseDue(releaser(ledger, posthog, status));
    const between = await ledger.get(queued.eventId);
    const second = await releaseDue(releaser(ledger, posthog, status));
    const third = await releaseDue(releaser(ledger, posthog, status));

    // Assess
    expect(between).toMatchObject({ status: 'NOT_QUALIFIED', lifecycleQueue: 'awaiting' });
    expect([first.notQualified, first.expiryFollowUpsFailed, second.notQualified, second.expiryFollowUpsFailed]).toEqual([1, 1, 0, 0]);
    expect(third.notQualified).toBe(0);
    expect(await ledger.get(queued.eventId)).toMatchObject({ status: 'NOT_QUALIFIED' });
    expect((await ledger.get(queued.eventId))?.lifecycleQueue).toBeUndefined();
    expect(await ledger.holders({ kind: 'redeemer', person: 'grace@example.org' })).toEqual([]);
    expect(await ledger.holders({ kind: 'person', person: 'id:person-1' })).toEqual([]);
    expect(posthog.track).toHaveBeenCalledTimes(2);
    expect(status.sendStatus.mock.calls.map(([message]) => message.status)).toEqual(['not_qualified']);
  });

  it('leaves a referral waiting within the grace after its deadline', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const queued = referral();
    await waiting(ledger, queued);

    // Act
    const run = await releaseDue({
      ...releaser(ledger, { track: jest.fn() }, { sendStatus: jest.fn() }),
      now: () => Date.parse(AT) + RULES.withinMs + QUALIFY_GRACE_MS - 1,
    });

    // Assess
    expect(run).toMatchObject({ notQualified: 0, awaiting: 1 });
    expect((await ledger.get(queued.eventId))?.status).toBe('AWAITING');
  });
});

describe("the referrer's cap under pay on value", () => {
  const CAP_RULES = { maxRewardsPerReferrer: 1, blockedDomains: [], referralSignatures: { mode: 'off' as const } };
  const ADA = { kind: 'referrer' as const, person: 'ada@example.com' };

  /** Everything fulfilment needs to pay a qualified referral at once (no lifecycle), cap 1. */
  function payDeps(ledger: MemoryLedger, shop: FakeShop): FulfilDeps {
    let code = 0;
    return {
      ledger,
      shopify: shop,
      customerio: { sendFulfilment: async () => undefined },
      rewardAmount: '25.00',
      customerioEvent: 'referral_fulfilled',
      newCode: () => `CODE${++code}`,
      customerioEventId: (eventId) => `cio-${eventId}`,
      rules: CAP_RULES,
      qualification: RULES,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
    };
  }

  /** A waiting referral (its redeemer claimed, no slot) moved on by its qualifying event. */
  async function qualified(ledger: MemoryLedger, queued: Referral): Promise<void> {
    const record = await waiting(ledger, queued);
    await ledger.count({ kind: 'redeemer', person: queued.redeemerEmail }, queued.eventId);
    await qualify(ledger, queued.eventId, randomUUID(), Number(record.qualifyBy));
  }

  it('pays a referral once, keeping its one slot, when its worker died between the slot claim and the verdict', async () => {
    // Prepare: two referrals of one referrer qualified; the first one's worker dies as it stores its verdict
    const ledger = new MemoryLedger();
    const shop = new FakeShop();
    const first = referral();
    const second = referral({ personId: 'person-2', distinctId: 'g2', redeemerEmail: 'g2@example.org', customerEmail: 'g2@example.org' });
    await qualified(ledger, first);
    await qualified(ledger, second);
    const write = ledger.write.bind(ledger);
    let crashed = false;
    jest.spyOn(ledger, 'write').mockImplementation(async (eventId, owner, change) => {
      if (change.step === 'decide' && !crashed) {
        crashed = true;
        throw new Error('simulated crash before the verdict is stored');
      }
      return write(eventId, owner, change);
    });

    // Act: the crash; the other referral meanwhile; the first one's retry once its lease has run out
    const crash = fulfilReferral(first, payDeps(ledger, shop), { owner: 'worker-1', deadline: Date.now() + 60_000 });
    await expect(crash).rejects.toThrow('simulated crash');
    const slotsAfterCrash = await ledger.holders(ADA);
    const other = await fulfilReferral(second, payDeps(ledger, shop), { owner: 'worker-2', deadline: Date.now() + 60_000 });
    ledger.now = () => Date.now() + 10 * 60_000;
    const retried = await fulfilReferral(first, payDeps(ledger, shop), { owner: 'worker-3', deadline: Date.now() + 60_000 });

    // Assess
    expect(slotsAfterCrash).toEqual([first.eventId]);
    expect(other).toEqual({ outcome: 'rejected', reason: 'referrer_cap_reached' });
    expect(retried).toEqual({ outcome: 'completed' });
    expect(await ledger.holders(ADA)).toEqual([first.eventId]);
    expect(shop.creates.map((create) => create.note)).toEqual([
      expect.stringContaining(`referrer reward for PostHog event ${first.eventId}`),
      expect.stringContaining(`redeemer reward for PostHog event ${first.eventId}`),
    ]);
  });

  it("refuses at once a referral whose referrer's slots are all held by qualified referrals, and lets it wait otherwise", async () => {
    // Prepare: one referral of the referrer qualified and paid, holding the one slot
    const ledger = new MemoryLedger();
    const shop = new FakeShop();
    const paid = referral();
    await qualified(ledger, paid);
    await fulfilReferral(paid, payDeps(ledger, shop), CONTEXT);
    const later = referral({ personId: 'person-3', distinctId: 'g3', redeemerEmail: 'g3@example.org', customerEmail: 'g3@example.org' });
    const otherReferrers = referral({
      referrerEmail: 'alan@example.com',
      personId: 'person-4',
      distinctId: 'g4',
      redeemerEmail: 'g4@example.org',
      customerEmail: 'g4@example.org',
    });

    // Act
    const refused = await fulfilReferral(later, payDeps(ledger, shop), CONTEXT);
    const waits = await fulfilReferral(otherReferrers, payDeps(ledger, shop), CONTEXT);

    // Assess: the refused one gives its redeemer back at once; the waiting one takes no slot
    expect(refused).toEqual({ outcome: 'rejected', reason: 'referrer_cap_reached' });
    expect(await ledger.holders({ kind: 'redeemer', person: 'g3@example.org' })).toEqual([]);
    expect(waits.outcome).toBe('awaiting');
    expect(await ledger.holders({ kind: 'referrer', person: 'alan@example.com' })).toEqual([]);
  });
});
