/**
 * The count of the lifecycle rounds (soak/lifecycle.ts), once faults are off and everything is
 * drained: per referral, what the fakes show it got against the state the ledger ended in, and
 * the budget's counters against the referrals actually paid.
 */
import { ROLES } from '../lib/adapters/dynamodb/ledger';
import { budgetPeriods, referralCents, type LifecycleRecord } from '../lib/adapters/dynamodb/ledger';
import { parseGiftCardNote } from '../lib/domain/rewards';
import { ulidFromUuid } from '../lib/infra/ulid';
import type { FakeTrackedEvent } from '../local/sandbox/customerio';
import type { FakeDiscountCode, FakeGiftCard } from '../local/sandbox/shopify';
import { groupBy } from './harness';
import type { ReferralProblem } from './report';

export interface LifecycleReport {
  rounds: number;
  /** Distinct referrals of the rounds. */
  referrals: number;
  hold: {
    held: number;
    released: number;
    duplicatesDuringHold: number;
    redrivesDuringHold: number;
    releaserRuns: number;
    releaserCrashes: number;
  };
  review: {
    sentToReview: number;
    approved: number;
    rejected: number;
    repeated: number;
    concurrent: number;
    refusedSecondDecisions: number;
  };
  revoke: { paid: number; held: number; inReview: number; interrupted: number; resumedAfterFault: number };
  crashes: number;
  faults: number;
  /** Per UTC day: the budget, what was counted, and the operators' approvals within it (cents). */
  budget: { limitCents: number; spentCents: number; approvedCents: number };
  /** Invariants: each must be 0. */
  issuedWhileParked: number;
  approvedNotPaidOnce: number;
  issuedAfterRefusal: number;
  overBudgetCents: number;
  budgetMiscounted: number;
  revokedStillActive: number;
  /** Referrals left HELD, in REVIEW, IN_PROGRESS or FAILED at the end (also counted in lost). */
  unfinished: number;
  lost: number;
  doubled: number;
  ok: boolean;
  problems: ReferralProblem[];
}

export type LifecycleVerdict = Pick<
  LifecycleReport,
  | 'issuedAfterRefusal'
  | 'approvedNotPaidOnce'
  | 'revokedStillActive'
  | 'budgetMiscounted'
  | 'overBudgetCents'
  | 'unfinished'
  | 'lost'
  | 'doubled'
> & { spentCents: number; approvedCents: number };

export interface LifecycleCountInput {
  records: LifecycleRecord[];
  cards: FakeGiftCard[];
  discounts: FakeDiscountCode[];
  events: FakeTrackedEvent[];
  /** What the ledger's budget items say, per period key (`day#…`). */
  spent: Map<string, { cents: number; referrals: number }>;
  limitCents: number;
  rewardAmount: string;
  problem: (eventId: string, text: string) => void;
}

interface Reward {
  eventId: string;
  role: string;
  active: boolean;
}

export function countLifecycle(input: LifecycleCountInput): LifecycleVerdict {
  const { records, problem } = input;
  const share = referralCents(input.rewardAmount);
  const rewards: Reward[] = [
    ...input.cards.map((card) => ({ note: parseGiftCardNote(card.note), active: card.enabled !== false })),
    ...input.discounts.map((discount) => ({ note: parseGiftCardNote(discount.title), active: discount.status !== 'EXPIRED' })),
  ].map(({ note, active }) => ({ eventId: note?.eventId ?? '', role: note?.role ?? '', active }));
  const rewardsByEvent = groupBy(rewards, (reward) => reward.eventId);
  const eventsById = groupBy(input.events, (event) => event.id.toUpperCase());
  const verdict: LifecycleVerdict = {
    issuedAfterRefusal: 0,
    approvedNotPaidOnce: 0,
    revokedStillActive: 0,
    budgetMiscounted: 0,
    overBudgetCents: 0,
    unfinished: 0,
    lost: 0,
    doubled: 0,
    spentCents: 0,
    approvedCents: 0,
  };
  const paidByDay = new Map<string, { paid: number; approved: number }>();

  for (const record of records) {
    const uuid = record.eventId;
    const mine = rewardsByEvent.get(uuid) ?? [];
    const sent = eventsById.get(ulidFromUuid(uuid).toUpperCase()) ?? [];
    const perRole = ROLES.map((role) => mine.filter((reward) => reward.role === role));
    const got = `${perRole.map((list, i) => `${list.length} ${ROLES[i]}`).join(', ')} reward(s), ${sent.length} event(s)`;
    const once = perRole.every((list) => list.length === 1) && sent.length === 1;
    const nothing = mine.length === 0 && sent.length === 0;
    const paidAtAll = record.status === 'COMPLETED' || (record.status === 'REVOKED' && !record.revokedBeforePayout);
    const approved = record.reviewDecision === 'approved';

    if (perRole.some((list) => list.length > 1) || sent.length > 1) {
      verdict.doubled++;
      problem(uuid, `lifecycle: doubled: ${got}`);
    }
    if (paidAtAll) {
      if (!once) {
        if (perRole.some((list) => list.length === 0) || sent.length === 0) verdict.lost++;
        problem(uuid, `lifecycle: ${record.status} but ${got}`);
        if (approved) verdict.approvedNotPaidOnce++;
      }
      const day = budgetPeriods(record.createdAt).day;
      const tally = paidByDay.get(day) ?? { paid: 0, approved: 0 };
      tally.paid++;
      if (approved) tally.approved++;
      paidByDay.set(day, tally);
    } else if (record.status === 'REJECTED' || record.status === 'REVOKED') {
      // Rejected in review, or revoked while HELD or in REVIEW: nothing may have been issued.
      if (!nothing) {
        verdict.issuedAfterRefusal++;
        verdict.doubled++;
        problem(uuid, `lifecycle: ${record.status}${record.revokedBeforePayout ? ' before payout' : ''} yet ${got}`);
      }
      if (approved) {
        verdict.approvedNotPaidOnce++;
        problem(uuid, `lifecycle: approved, then ${record.status}`);
      }
    } else {
      verdict.unfinished++;
      verdict.lost++;
      problem(uuid, `lifecycle: left ${record.status} (${record.reviewReasons?.join(',') ?? ''}) at the end: ${got}`);
    }
    if (record.status === 'REVOKED' && !record.revokedBeforePayout) {
      const active = mine.filter((reward) => reward.active).length;
      const recorded = ROLES.every((role) => record[`${role}DeactivatedAt`]);
      if (active > 0 || !recorded) {
        verdict.revokedStillActive++;
        problem(uuid, `lifecycle: revoked after payout with ${active} reward(s) still active (ledger has both deactivations: ${recorded})`);
      }
    }
  }

  // The budget: counted exactly for the referrals paid, and over the limit only by approvals.
  for (const [day, tally] of paidByDay) {
    const spent = input.spent.get(day) ?? { cents: 0, referrals: 0 };
    verdict.spentCents += spent.cents;
    verdict.approvedCents += tally.approved * share;
    if (spent.cents !== tally.paid * share || spent.referrals !== tally.paid) {
      verdict.budgetMiscounted++;
      problem('-', `lifecycle: ${day} counts ${spent.cents} cents for ${spent.referrals} referral(s), ${tally.paid} were paid`);
    }
    const overBudget = spent.cents - tally.approved * share - input.limitCents;
    if (overBudget > 0) {
      verdict.overBudgetCents += overBudget;
      problem('-', `lifecycle: ${day} spent ${overBudget} cents over the budget beyond operator approvals`);
    }
  }
  for (const [day, spent] of input.spent) {
    if (!paidByDay.has(day) && spent.cents !== 0) {
      verdict.budgetMiscounted++;
      problem('-', `lifecycle: ${day} counts ${spent.cents} cents, nothing was paid`);
    }
  }
  return verdict;
}

/** The report's rows for the lifecycle rounds. */
export function lifecycleRows(report: LifecycleReport): [string, string][] {
  const { hold, review, revoke, budget } = report;
  return [
    [
      'lifecycle rounds (#14), faults on',
      `${report.rounds} rounds, ${report.referrals} referrals; ${report.crashes} crashes, ${report.faults} upstream faults`,
    ],
    [
      '… held, released by the releaser',
      `${hold.held} held, ${hold.released} released and paid; during the hold ${hold.duplicatesDuringHold} duplicate webhooks, ${hold.redrivesDuringHold} redriven messages; ` +
        `${hold.releaserRuns} releaser runs (${hold.releaserCrashes} crashed after claiming)`,
    ],
    [
      '… over the daily budget → review',
      `${review.sentToReview} sent to review; ${review.approved} approved, ${review.rejected} rejected (${review.repeated} decided twice, ` +
        `${review.concurrent} decided by two operators at once, ${review.refusedSecondDecisions} second decisions refused)`,
    ],
    [
      '… revoked',
      `${revoke.paid} paid (${revoke.interrupted} interrupted between the two deactivations and resumed, ${revoke.resumedAfterFault} resumed after a Shopify fault), ` +
        `${revoke.held} while held, ${revoke.inReview} in review`,
    ],
    [
      '… budget',
      `${(budget.spentCents / 100).toFixed(2)} counted of ${(budget.limitCents / 100).toFixed(2)}, of which ${(budget.approvedCents / 100).toFixed(2)} operator approvals; ` +
        `${(report.overBudgetCents / 100).toFixed(2)} over beyond approvals, ${report.budgetMiscounted} days miscounted`,
    ],
    [
      '… lifecycle invariants broken',
      `issued while held/in review ${report.issuedWhileParked}, approved not paid exactly once ${report.approvedNotPaidOnce}, ` +
        `issued after reject/revoke before payout ${report.issuedAfterRefusal}, revoked but still active ${report.revokedStillActive}, ` +
        `unfinished ${report.unfinished}; lost ${report.lost}, doubled ${report.doubled}`,
    ],
  ];
}
