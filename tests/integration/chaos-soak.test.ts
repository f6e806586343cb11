import { CHECKPOINTS, CUSTOMERIO_FAULTS, formatReport, runChaosSoak, SHOPIFY_FAULTS, type SoakReport } from '../../soak/chaos';
import { QUALIFY_FATES } from '../../soak/qualify';
import { SEQUENCE_CASES } from '../../soak/sequences';

/**
 * A small chaos soak inside `npm test` (the full one is `npm run soak`, see docs/RELIABILITY.md):
 * the real pipeline under duplicate webhooks, upstream faults of every kind, crashes at every
 * step boundary and three workers polling, then a DLQ redrive with the faults off. Every
 * referral must end with exactly its two cards and one Customer.io event (the lifecycle rounds:
 * held, reviewed or revoked as the ledger says), and the soak must
 * really have injected what it claims, so it cannot pass by doing nothing.
 */
describe('chaos soak (small)', () => {
  let report: SoakReport;
  // Listed by name, so a failure says which kind never happened.
  const never = (counts: Record<string, number>, kinds: readonly string[]) => kinds.filter((kind) => !(counts[kind] > 0));

  beforeAll(async () => {
    report = await runChaosSoak({ events: 200, seed: 20_251_125, pollers: 3 });
    if (!report.ok) {
      // The table and each problem's trace are what a failure needs to be reproduced.
      console.log(`${formatReport(report)}\n${JSON.stringify(report.problems.slice(0, 10), null, 2)}`);
    }
  }, 240_000); // a guard against a hang, not a speed target: 40-60 s alone, more on a loaded 2-core machine

  it('loses no referral and pays none twice', () => {
    expect(report.problems).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.doubled).toBe(0);
    expect(report.refusedButPaid).toBe(0);
    expect(report.statuses.unaccounted).toBe(0);
    expect(report.ok).toBe(true);
  });

  it('pays each rewarded referral exactly two cards and one event, with the codes on the cards', () => {
    expect(report.rewarded).toBe(report.expectedRewarded);
    expect(report.cardsCreated).toBe(2 * report.expectedRewarded);
    expect(report.eventsSent).toBe(report.expectedRewarded);
    expect(report.codeMismatches).toBe(0);
    expect(report.captureMismatches).toBe(0);
    expect(report.statuses.completed + report.statuses.rejected).toBe(report.events);
  });

  it('really injected duplicates, faults of every kind and crashes at every checkpoint', () => {
    expect(report.duplicatedEvents / report.events).toBeGreaterThan(0.15);
    expect(report.duplicatesBy.burst).toBeGreaterThan(0);
    expect(report.duplicatesBy.spread).toBeGreaterThan(0);
    expect(report.lateCopiesOfFinished).toBeGreaterThan(0);
    expect(never(report.faults.shopify, SHOPIFY_FAULTS)).toEqual([]);
    expect(never(report.faults.customerio, CUSTOMERIO_FAULTS)).toEqual([]);
    expect(never(report.crashes.soft, CHECKPOINTS)).toEqual([]);
    expect(never(report.crashes.hard, CHECKPOINTS)).toEqual([]);
    // Concurrent copies really met: a worker found the lease held by another.
    expect(report.ledgerBegins.busy).toBeGreaterThan(0);
    expect(report.settings.pollers).toBeGreaterThanOrEqual(2);
    expect(report.planted.selfReferrals).toBeGreaterThan(0);
    expect(report.planted.repeatRedeemerPairs).toBeGreaterThan(0);
    expect(report.planted.cappedReferrerReferrals).toBeGreaterThan(0);
  });

  it('ran the lifecycle rounds of issue #14: holds released, reviews decided, revokes finished, every invariant whole', () => {
    const { hold, review, revoke } = report.lifecycle;
    expect(hold.held).toBeGreaterThan(0);
    expect(hold.released).toBeGreaterThan(0);
    expect(hold.duplicatesDuringHold + hold.redrivesDuringHold).toBeGreaterThan(0);
    expect(review.sentToReview).toBeGreaterThan(0);
    expect(review.approved).toBeGreaterThan(0);
    expect(review.rejected).toBeGreaterThan(0);
    expect(review.concurrent).toBeGreaterThan(0);
    expect(revoke.paid).toBeGreaterThan(0);
    expect(revoke.held + revoke.inReview).toBeGreaterThan(0);
    expect(revoke.interrupted).toBeGreaterThan(0);
    expect(report.lifecycle).toMatchObject({
      issuedWhileParked: 0,
      approvedNotPaidOnce: 0,
      issuedAfterRefusal: 0,
      overBudgetCents: 0,
      budgetMiscounted: 0,
      revokedStillActive: 0,
      unfinished: 0,
      lost: 0,
      doubled: 0,
      ok: true,
      problems: [],
    });
  });

  it('ran the qualification rounds (pay on value): never paid unqualified, never twice, every expired one final, refunds cancel', () => {
    const qualification = report.qualification;
    expect(never(qualification.fates, QUALIFY_FATES)).toEqual([]);
    expect(qualification.paid).toBeGreaterThan(0);
    expect(qualification.notQualified).toBeGreaterThan(0);
    expect(qualification.cancelled).toBeGreaterThan(0);
    // The catch-up really queued lost events, expired ones really got a qualifying event afterwards, and crashes happened.
    expect(qualification.caughtUp).toBeGreaterThan(0);
    expect(qualification.lateAfterExpiry).toBeGreaterThan(0);
    expect(qualification.crashes).toBeGreaterThan(0);
    expect(qualification).toMatchObject({
      paidUnqualified: 0,
      paidBeforeQualified: 0,
      paidTwice: 0,
      qualifiedNotPaid: 0,
      expiredNotFinal: 0,
      refundedButPaid: 0,
      lost: 0,
      doubled: 0,
      ok: true,
      problems: [],
    });
  });

  it('ran the sequence cases of issue #10 and each came out whole', () => {
    expect(never(report.sequences.cases, SEQUENCE_CASES)).toEqual([]);
    expect(report.sequences).toMatchObject({ lost: 0, doubled: 0, expiryWrong: 0, misdirected: 0, problems: [] });
  });
});
