import type { LedgerRecord } from '../../lib/domain/ledger-port';

/**
 * A referral's ledger record as the worker begins it (IN_PROGRESS, its codes drawn, a gift card of
 * 25.00), made at `at`, with `overrides` for what a test's case needs (its status, its rewards).
 */
export function begunRecord(eventId: string, at: string, overrides: Partial<LedgerRecord> = {}): LedgerRecord {
  return {
    pk: `referral#${eventId}`,
    eventId,
    status: 'IN_PROGRESS',
    referrerEmail: 'ada@example.com',
    redeemerEmail: 'grace@example.org',
    customerEmail: 'grace@example.org',
    referrerCode: 'REF1',
    redeemerCode: 'RED1',
    customerioEventId: 'cio',
    rewardType: 'gift_card',
    rewardAmount: '25.00',
    attempts: 1,
    createdAt: at,
    updatedAt: at,
    ...overrides,
  };
}
