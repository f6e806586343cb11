import { randomUUID } from 'node:crypto';
import type { LedgerRecord } from '../../lib/domain/ledger-port';
import { releaseDue, type ReleaserDeps } from '../../lib/domain/lifecycle/release';
import type { RewardDeactivator } from '../../lib/domain/lifecycle/revoke';
import { RetryableError } from '../../lib/domain/errors';
import type { OutcomeCapture } from '../../lib/domain/notify-ports';
import type { StatusMessage } from '../../lib/domain/status';
import { requestRevoke } from '../../lib/domain/steps';
import { begunRecord } from '../support/ledger-records';
import { MemoryLedger } from '../support/memory-ledger';

/**
 * A refund's revoke of a paid referral (REVOKE_PAID): the worker records it and parks it in the
 * `revoking` queue; the releaser deactivates both rewards, makes it REVOKED, captures and tells it.
 */
const AT = '2026-11-20T10:00:00.000Z';

function paid(ledger: MemoryLedger, overrides: Partial<LedgerRecord> = {}): LedgerRecord {
  const eventId = randomUUID();
  const record = begunRecord(eventId, AT, {
    status: 'COMPLETED',
    decision: 'ACCEPTED',
    referrerCardId: `gid://shopify/GiftCard/${eventId}-1`,
    redeemerCardId: `gid://shopify/GiftCard/${eventId}-2`,
    customerioAt: AT,
    ...overrides,
  });
  ledger.seed(record);
  return record;
}

/** A shop whose deactivations are recorded; that of `failOnce` fails retryably the first time. */
function shop(failOnce?: string): RewardDeactivator & { deactivated: string[] } {
  let failed = false;
  const deactivated: string[] = [];
  return {
    deactivated,
    async deactivateReward(id) {
      if (id === failOnce && !failed) {
        failed = true;
        throw new RetryableError('shopify giftCardDeactivate: THROTTLED');
      }
      deactivated.push(id);
      return { balanceLeft: '25.00' };
    },
  };
}

function releaser(ledger: MemoryLedger, shopify?: RewardDeactivator) {
  const captures: OutcomeCapture[] = [];
  const statuses: StatusMessage[] = [];
  const enqueued: string[] = [];
  const deps: ReleaserDeps = {
    ledger,
    index: ledger,
    enqueue: async (referral) => enqueued.push(referral.eventId),
    resendAfterMs: 0,
    posthog: { track: async (capture) => void captures.push(capture) },
    status: { sendStatus: async (message) => void statuses.push(message) },
    ...(shopify ? { shopify } : {}),
  };
  return { deps, captures, statuses, enqueued };
}

describe("the releaser's revokes of refunded paid referrals", () => {
  it('deactivates both rewards, makes the referral REVOKED, captures `revoked` and tells `cancelled`, once across runs', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const record = paid(ledger);
    await requestRevoke(ledger, record.eventId, 'subscription refunded', { park: true });
    const fake = shop();
    const { deps, captures, statuses } = releaser(ledger, fake);

    // Act
    const first = await releaseDue(deps);
    const second = await releaseDue(deps);

    // Assess
    expect([first.revoked, second.revoked]).toEqual([1, 0]);
    expect(fake.deactivated).toEqual([record.referrerCardId, record.redeemerCardId]);
    expect(await ledger.get(record.eventId)).toMatchObject({
      status: 'REVOKED',
      revokeReason: 'subscription refunded',
      referrerBalanceLeft: '25.00',
    });
    expect((await ledger.get(record.eventId))?.lifecycleQueue).toBeUndefined();
    expect(captures.map(({ outcome, extra }) => [outcome, extra])).toEqual([
      ['revoked', { reason: 'subscription refunded', beforePayout: false }],
    ]);
    expect(statuses.map(({ status, reason }) => [status, reason])).toEqual([['cancelled', 'subscription refunded']]);
  });

  it('counts a failed deactivation, still releases the held referrals due, and finishes the revoke on the next run', async () => {
    // Prepare: the redeemer's deactivation fails once (after the referrer's succeeded)
    const ledger = new MemoryLedger();
    const refunded = paid(ledger);
    await requestRevoke(ledger, refunded.eventId, 'subscription refunded', { park: true });
    const heldId = randomUUID();
    const held = paid(ledger, {
      pk: `referral#${heldId}`,
      eventId: heldId,
      status: 'HELD',
      referrerCardId: undefined,
      redeemerCardId: undefined,
      releaseAt: Date.parse(AT),
      lifecycleQueue: 'held',
      lifecycleAt: Date.parse(AT),
      parkedMessage: JSON.stringify({
        v: 1,
        eventId: heldId,
        eventName: 'referral redeemed',
        referrerEmail: 'ada@example.com',
        redeemerEmail: 'grace@example.org',
        customerEmail: 'grace@example.org',
      }),
    });
    const fake = shop(refunded.redeemerCardId);
    const { deps, enqueued } = releaser(ledger, fake);

    // Act
    const first = await releaseDue(deps);
    const between = await ledger.get(refunded.eventId);
    const second = await releaseDue(deps);

    // Assess
    expect(first).toMatchObject({ released: 1, revoked: 0 });
    expect(first.revokesFailed).toEqual([{ referral: refunded.eventId, error: 'shopify giftCardDeactivate: THROTTLED' }]);
    expect(enqueued).toContain(held.eventId);
    expect(between).toMatchObject({ status: 'COMPLETED', lifecycleQueue: 'revoking' });
    expect(between?.referrerDeactivatedAt).toBeDefined();
    expect(second).toMatchObject({ revoked: 1, revokesFailed: [] });
    expect(fake.deactivated).toEqual([refunded.referrerCardId, refunded.redeemerCardId]);
    expect((await ledger.get(refunded.eventId))?.status).toBe('REVOKED');
  });

  it('counts a revoke it has no Shopify client for, and leaves it requested and parked', async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const record = paid(ledger);
    await requestRevoke(ledger, record.eventId, 'subscription refunded', { park: true });
    const { deps } = releaser(ledger);

    // Act
    const run = await releaseDue(deps);

    // Assess
    expect(run.revokesFailed).toHaveLength(1);
    expect(await ledger.get(record.eventId)).toMatchObject({ status: 'COMPLETED', lifecycleQueue: 'revoking' });
  });

  it("leaves a revoke requested by an operator (`ops revoke`, not parked) to the operator's command", async () => {
    // Prepare
    const ledger = new MemoryLedger();
    const record = paid(ledger);
    await requestRevoke(ledger, record.eventId, 'fraud');
    const fake = shop();
    const { deps } = releaser(ledger, fake);

    // Act
    const run = await releaseDue(deps);

    // Assess
    expect(run.revoked).toBe(0);
    expect(fake.deactivated).toEqual([]);
  });
});
