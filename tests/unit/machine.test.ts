import type { LedgerRecord } from '../../lib/domain/ledger-port';
import { budgetCentsOf, heldSince, reviewSince } from '../../lib/domain/lifecycle/record';
import { fromStates, lastStep, stateOf } from '../../lib/domain/machine';
import { begunRecord } from '../support/ledger-records';

const AT = '2026-11-20T10:00:00.000Z';
const LATER = '2026-11-21T10:00:00.000Z';

function record(overrides: Partial<LedgerRecord>): LedgerRecord {
  return begunRecord('e1', AT, { customerioEventId: 'cio-1', ...overrides });
}

describe('stateOf: the state derived from what the record stores', () => {
  it.each([
    ['no verdict yet', {}, { name: 'RECEIVED', accepted: false }],
    ["the previous release's acceptance without the lifecycle's half", { decision: 'ACCEPTED' }, { name: 'RECEIVED', accepted: true }],
    [
      'a refusal not yet ended',
      { decision: 'REJECTED', rejectionReason: 'self_referral' },
      { name: 'REJECTED', reason: 'self_referral', final: false },
    ],
    [
      'a refusal ended',
      { status: 'REJECTED', decision: 'REJECTED', rejectionReason: 'self_referral' },
      { name: 'REJECTED', reason: 'self_referral', final: true },
    ],
    ['a pay verdict', { decision: 'ACCEPTED', gatePassedAt: AT }, { name: 'PAYING' }],
    ['a reward created before the pay verdict was stored', { decision: 'ACCEPTED', referrerCardId: 'gid://1' }, { name: 'PAYING' }],
    ['held until a time', { status: 'HELD', decision: 'ACCEPTED', releaseAt: 5, parkedAt: AT }, { name: 'HELD', until: 5, takenUp: false }],
    ['a hold taken up, not yet released', { decision: 'ACCEPTED', releaseAt: 5, parkedAt: AT }, { name: 'HELD', until: 5, takenUp: true }],
    ['a hold released', { decision: 'ACCEPTED', parkedAt: AT, releasedAt: LATER }, { name: 'PAYING' }],
    ['in review', { status: 'REVIEW', decision: 'ACCEPTED', reviewReasons: ['velocity'] }, { name: 'REVIEW', reasons: ['velocity'] }],
    ['a completed referral being revoked', { status: 'COMPLETED', revokeRequestedAt: AT }, { name: 'REVOKING' }],
    ['revoked before payout', { status: 'REVOKED', revokedBeforePayout: true }, { name: 'REVOKED', beforePayout: true }],
    ['failed', { status: 'FAILED', failureReason: 'shopify_auth' }, { name: 'FAILED', reason: 'shopify_auth' }],
    [
      'waiting for its qualifying event',
      { status: 'AWAITING', decision: 'ACCEPTED', qualifyBy: 9 },
      { name: 'AWAITING_QUALIFICATION', until: 9 },
    ],
    ['qualified, the lifecycle not yet asked', { decision: 'ACCEPTED', qualifiedAt: LATER }, { name: 'RECEIVED', accepted: true }],
    ['not qualified by its deadline', { status: 'NOT_QUALIFIED', decision: 'ACCEPTED', qualifyBy: 9 }, { name: 'NOT_QUALIFIED' }],
  ] as const)('%s', (_name, fields, state) => {
    expect(stateOf(record(fields as Partial<LedgerRecord>))).toEqual(state);
  });
});

describe('the transition table', () => {
  it("names the stored statuses an operator's move starts from", () => {
    expect([fromStates('approve'), fromStates('cancel'), fromStates('reject'), fromStates('revoke')]).toEqual([
      ['REVIEW'],
      ['AWAITING', 'HELD', 'REVIEW'],
      ['REVIEW'],
      ['COMPLETED'],
    ]);
  });

  it("ends a referral with PostHog's capture when due, else Customer.io's step, else a write of its own", () => {
    expect(lastStep(record({ decision: 'ACCEPTED' }), true)).toBe('posthog');
    expect(lastStep(record({ decision: 'ACCEPTED' }), false)).toBe('customerio');
    expect(lastStep(record({ decision: 'ACCEPTED', customerioAt: AT }), false)).toBe('own');
    expect(lastStep(record({ decision: 'REJECTED' }), false)).toBe('own');
  });
});

// The previous release's stored budgetCents, reviewSince and heldAt: tests/integration/ops-migrate.test.ts.
describe('fields derived, not stored', () => {
  it('derives the budget share from the reward fixed at begin', () => {
    expect(budgetCentsOf(record({ rewardAmount: '12.50' }))).toBe(2_500);
  });

  it('derives when it went to review from its park', () => {
    expect(reviewSince(record({ reviewReasons: ['budget'], parkedAt: AT }))).toBe(AT);
    expect(reviewSince(record({ parkedAt: AT }))).toBeUndefined();
  });

  it('derives when it was held: its park, or the approval that moved it out of review', () => {
    expect(heldSince(record({ parkedAt: AT }))).toBe(AT);
    expect(heldSince(record({ parkedAt: AT, reviewReasons: ['velocity'], reviewDecision: 'approved', reviewedAt: LATER }))).toBe(LATER);
  });
});
