import { reconcile, slidingWindow, webhookBody, type QueuedMessage, type ReconcileDeps } from '../../lib/domain/reconcile';
import type { EventRow } from '../../lib/adapters/posthog-query';

const UUID = (n: number) => `0190B6C2-6F1E-7C3A-9D7E-00000000000${n}`;
const row = (
  n: number,
  properties: unknown = { referrer_email: `ref${n}@example.com`, redeemer_email: `red${n}@example.com` },
): EventRow => ({
  uuid: UUID(n),
  event: 'referral redeemed',
  distinctId: `d${n}`,
  properties: JSON.stringify(properties),
  timestamp: `2026-07-01T00:0${n}:00.000Z`,
});
const OPTIONS = {
  referralEvent: 'referral redeemed',
  referrerEmailProperty: 'referrer_email',
  redeemerEmailProperty: 'redeemer_email',
  window: { since: Date.parse('2026-07-01T00:00:00Z'), until: Date.parse('2026-07-02T00:00:00Z') },
};

function fakes(pages: EventRow[][], inLedger: string[] = []) {
  const queued: QueuedMessage[] = [];
  const warnings: { message: string; extra?: Record<string, unknown> }[] = [];
  const deps: ReconcileDeps = {
    source: {
      async *pages() {
        yield* pages;
      },
      async *personEventPages() {},
    },
    inLedger: async (ids) => new Set(ids.filter((id) => inLedger.includes(id))),
    personEventsInLedger: async () => new Set(),
    enqueue: async (referral) => void queued.push(referral),
    log: { info: () => undefined, warn: (message, extra) => void warnings.push({ message, extra }) },
  };
  return { deps, queued, warnings };
}

describe('reconcile', () => {
  it('queues only the referrals the ledger has never seen, as parseWebhook reads them', async () => {
    // Prepare
    const { deps, queued } = fakes([[row(1), row(2)], [row(3)]], [UUID(2).toLowerCase()]);

    // Act
    const report = await reconcile(deps, OPTIONS);

    // Assess
    expect(report).toMatchObject({ seen: 3, known: 1, queued: 2 });
    expect(queued.map((r) => r.eventId)).toEqual([UUID(1).toLowerCase(), UUID(3).toLowerCase()]);
    expect(queued[0]).toMatchObject({
      v: 1,
      referrerEmail: 'ref1@example.com',
      redeemerEmail: 'red1@example.com',
      occurredAt: row(1).timestamp,
    });
  });

  it("queues the app's signature and referral code from the row's properties, for the worker to check", async () => {
    // Prepare
    const signature = 'EveHz2HVuwzqAAY0hlQH-q_NLAnO-Qx1J4hlRI1vEw0';
    const properties = {
      referrer_email: 'ref1@example.com',
      redeemer_email: 'red1@example.com',
      referral_code: 'K7M2Q9XP',
      referral_signature: signature,
    };
    const { deps, queued } = fakes([[row(1, properties)]]);

    // Act
    await reconcile(deps, OPTIONS);

    // Assess
    expect(queued[0]).toMatchObject({ referralCode: 'k7m2q9xp', referralSignature: signature });
  });

  it('logs one WARN per missing referral with its uuid and masked emails', async () => {
    // Prepare
    const { deps, warnings } = fakes([[row(1)]]);

    // Act
    await reconcile(deps, OPTIONS);

    // Assess
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.extra).toEqual({
      eventId: UUID(1).toLowerCase(),
      occurredAt: row(1).timestamp,
      referrer: 'r***@example.com',
      redeemer: 'r***@example.com',
    });
    expect(JSON.stringify(warnings)).not.toContain('ref1@');
  });

  it('queues nothing in a dry run, but lists what is missing', async () => {
    // Prepare
    const { deps, queued } = fakes([[row(1)]]);

    // Act
    const report = await reconcile(deps, { ...OPTIONS, dryRun: true });

    // Assess
    expect(queued).toHaveLength(0);
    expect(report.missing.map((m) => m.eventId)).toEqual([UUID(1).toLowerCase()]);
    expect(report.queued).toBe(0);
  });

  it('counts a row parseWebhook refuses as unreconcilable, with its code, and queues nothing for it', async () => {
    // Prepare
    const { deps, queued } = fakes([[row(1, { referrer_email: 'ref@example.com' })]]);

    // Act
    const report = await reconcile(deps, OPTIONS);

    // Assess
    expect(queued).toHaveLength(0);
    expect(report.unreconcilable).toEqual([expect.objectContaining({ eventId: UUID(1), code: 'missing_redeemer_email' })]);
  });

  it('queues a referral PostHog returns twice only once', async () => {
    // Prepare
    const { deps, queued } = fakes([[row(1)], [row(1)]]);

    // Act
    await reconcile(deps, OPTIONS);

    // Assess
    expect(queued).toHaveLength(1);
  });
});

describe('slidingWindow', () => {
  const settings = { from: Date.parse('2026-07-01T00:00:00Z'), lookbackMs: 72 * 3_600_000, minAgeMs: 5 * 60_000 };

  it('never starts before RECONCILE_FROM', () => {
    // Act
    const window = slidingWindow(settings, Date.parse('2026-07-02T00:00:00Z'));

    // Assess
    expect(window.since).toBe(settings.from);
  });

  it('looks back RECONCILE_LOOKBACK once past it, and ends RECONCILE_MIN_AGE ago', () => {
    // Prepare
    const now = Date.parse('2026-07-10T00:00:00Z');

    // Act
    const window = slidingWindow(settings, now);

    // Assess
    expect(window).toEqual({ since: now - settings.lookbackMs, until: now - settings.minAgeMs });
  });
});

describe('webhookBody', () => {
  it("rebuilds PostHog's default template body, with the person's email when the row has one", () => {
    // Act
    const body = JSON.parse(webhookBody({ ...row(1), personEmail: 'person@example.com' }));

    // Assess
    expect(body).toEqual({
      event: {
        uuid: UUID(1),
        event: 'referral redeemed',
        distinct_id: 'd1',
        properties: { referrer_email: 'ref1@example.com', redeemer_email: 'red1@example.com' },
        timestamp: row(1).timestamp,
      },
      person: { properties: { email: 'person@example.com' } },
    });
  });
});

describe('reconcile: the catch-up of qualifying and refund events', () => {
  const CATCH_UP = {
    ...OPTIONS,
    catchUp: { qualifyEvent: 'subscription paid', qualifyWithinMs: 30 * 86_400_000, referralsFrom: OPTIONS.window.since },
  };
  const paid = (n: number, timestamp = `2026-07-01T01:0${n}:00.000Z`): EventRow => ({
    uuid: UUID(n),
    event: 'subscription paid',
    distinctId: `d${n}`,
    properties: JSON.stringify({ amount: 49, referral_signature: 'sig' }),
    timestamp,
    personEmail: `red${n}@example.com`,
    personId: `p-${n}`,
  });

  function catchUpFakes(rows: EventRow[], handled: string[] = []) {
    const { deps, queued, warnings } = fakes([]);
    const windows: unknown[] = [];
    deps.source.personEventPages = async function* (window) {
      windows.push(window);
      yield rows;
    };
    deps.personEventsInLedger = async (ids) => new Set(ids.filter((id) => handled.includes(id)));
    return { deps, queued, warnings, windows };
  }

  it('queues the person event the worker has not handled, read as ingest reads it, with the person it is about', async () => {
    // Prepare
    const { deps, queued } = catchUpFakes([paid(1), paid(2)], [UUID(2).toLowerCase()]);

    // Act
    const report = await reconcile(deps, CATCH_UP);

    // Assess
    expect(report.personEvents).toEqual({ seen: 2, known: 1, missing: 1, queued: 1, unreconcilable: 0 });
    expect(queued).toEqual([
      expect.objectContaining({ kind: 'person-event', role: 'qualify', eventId: UUID(1).toLowerCase(), personId: 'p-1', distinctId: 'd1' }),
    ]);
  });

  it("looks for redeemers of referrals up to QUALIFY_WITHIN before the window's start", async () => {
    // Prepare
    const { deps, windows } = catchUpFakes([]);

    // Act
    await reconcile(deps, CATCH_UP);

    // Assess
    expect(windows).toEqual([
      expect.objectContaining({
        qualify: expect.objectContaining({ event: 'subscription paid', referralsSince: '2026-06-01T00:00:00.000Z' }),
      }),
    ]);
  });

  it('logs each queued event by uuid and role only: never an email', async () => {
    // Prepare
    const { deps, warnings } = catchUpFakes([paid(1)]);

    // Act
    await reconcile(deps, CATCH_UP);

    // Assess
    expect(warnings.map((w) => w.extra)).toEqual([
      { eventId: UUID(1).toLowerCase(), role: 'qualify', occurredAt: '2026-07-01T01:01:00.000Z' },
    ]);
    expect(JSON.stringify(warnings)).not.toContain('@');
  });

  it('counts a row the parser refuses (no timestamp) as unreconcilable and queues nothing for it', async () => {
    // Prepare
    const { deps, queued } = catchUpFakes([paid(1, '')]);

    // Act
    const report = await reconcile(deps, CATCH_UP);

    // Assess
    expect(report.personEvents).toMatchObject({ seen: 0, unreconcilable: 1, queued: 0 });
    expect(queued).toHaveLength(0);
  });

  it('does not ask PostHog when neither QUALIFY_EVENT nor REVOKE_EVENT is set, and reports no catch-up', async () => {
    // Prepare
    const { deps, windows } = catchUpFakes([paid(1)]);

    // Act
    const report = await reconcile(deps, { ...OPTIONS, catchUp: { qualifyWithinMs: 1, referralsFrom: 0 } });

    // Assess
    expect(windows).toHaveLength(0);
    expect(report.personEvents).toBeUndefined();
  });
});
