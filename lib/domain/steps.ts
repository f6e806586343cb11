/**
 * The domain's writes to a referral's record, each ONE conditional write over the ledger's two
 * primitives (lib/domain/ledger-port.ts): `write`, fenced on the worker's lease, and `move`, an
 * operator's move from the status the machine (lib/domain/machine.ts) allows it from. What each
 * stores is the fact of the step; the state is derived from them (stateOf).
 */
import { LeaseLostError, NOW_ISO, NOW_MS, type Change, type FinalStatus, type LedgerPort, type Role } from './ledger-port';
import type { LifecycleRecord } from './lifecycle/record';
import { fromStates, type Verdict } from './machine';

/** The sparse `lifecycle` index's keys: only a parked referral has them (the releaser and `review list` read just those). */
const QUEUE = ['lifecycleQueue', 'lifecycleAt'];

type Leased = Promise<LifecycleRecord>;
type Moved = Promise<LifecycleRecord | undefined>;

/** The reward exists: its id, and the expiry it was issued with (none when it never expires). */
export function recordCard(ledger: LedgerPort, eventId: string, owner: string, role: Role, cardId: string, expiresOn?: string): Leased {
  return ledger.write(eventId, owner, {
    step: 'recordCard',
    set: { [`${role}CardId`]: cardId, [`${role}CardAt`]: NOW_ISO, ...(expiresOn ? { [`${role}ExpiresOn`]: expiresOn } : {}) },
  });
}

/** A code Shopify says belongs to someone else's reward: swapped only if it is still the one we tried. */
export function replaceCode(ledger: LedgerPort, eventId: string, owner: string, role: Role, oldCode: string, newCode: string): Leased {
  return ledger.write(eventId, owner, {
    step: 'replaceCode',
    set: { [`${role}Code`]: newCode },
    add: { codeCollisions: 1 },
    expect: { [`${role}Code`]: oldCode },
  });
}

/** The first "taken, not ours" sighting of `code`: fenced on the code too, so it never lands on a code already replaced. */
export function recordTakenSeen(ledger: LedgerPort, eventId: string, owner: string, role: Role, code: string): Leased {
  return ledger.write(eventId, owner, {
    step: 'recordTakenSeen',
    set: { [`${role}TakenSeenAt`]: NOW_ISO, [`${role}TakenSeenCode`]: code },
    expect: { [`${role}Code`]: code },
  });
}

/** With `finish` the last outside call is also the last ledger step: one sequential write fewer per referral. */
export const recordCustomerIo = (ledger: LedgerPort, eventId: string, owner: string, finish?: FinalStatus): Leased =>
  ending(ledger, eventId, owner, 'recordCustomerIo', { customerioAt: NOW_ISO }, finish);

export const recordPostHog = (ledger: LedgerPort, eventId: string, owner: string, finish?: FinalStatus): Leased =>
  ending(ledger, eventId, owner, 'recordPostHog', { posthogAt: NOW_ISO }, finish);

/** Ends a referral whose last step an earlier attempt did, or a refusal with no capture to carry the end. */
export const finish = (ledger: LedgerPort, eventId: string, owner: string, status: FinalStatus): Leased =>
  ending(ledger, eventId, owner, 'finish', {}, status);

/** `set`, and with `finish` the referral's end in the same write: final status, its time, no lease. */
function ending(ledger: LedgerPort, eventId: string, owner: string, step: string, set: Change['set'], finish?: FinalStatus): Leased {
  if (!finish) return ledger.write(eventId, owner, { step, set });
  const end = { status: finish, [finish === 'COMPLETED' ? 'completedAt' : 'rejectedAt']: NOW_ISO };
  return ledger.write(eventId, owner, { step, set: { ...set, ...end }, freeLease: true });
}

/**
 * The verdict, in the one write that decides it: a refusal with its reason; a pay, stored before
 * the first Shopify call (gatePassedAt); a hold or review, which parks the record (its status, the
 * index's keys, `message`: the queue message the releaser hands back) and frees the lease.
 */
export function decide(ledger: LedgerPort, eventId: string, owner: string, verdict: Verdict, message: string): Leased {
  if (verdict.kind === 'reject')
    return ledger.write(eventId, owner, { step: 'decide', set: { decision: 'REJECTED', rejectionReason: verdict.reason } });
  if (verdict.kind === 'pay') return ledger.write(eventId, owner, { step: 'decide', set: { decision: 'ACCEPTED', gatePassedAt: NOW_ISO } });
  // Waiting for qualification: accepted by the rules, nothing else decided (no parkedAt: it is not a
  // hold); in the index under its deadline, so the releaser finds it once that has passed. The times
  // it was held or went to review, and its budget share, are derived (lifecycle/record.ts).
  const parked =
    verdict.kind === 'await'
      ? { status: 'AWAITING', qualifyBy: verdict.until, lifecycleQueue: 'awaiting', lifecycleAt: verdict.until }
      : verdict.kind === 'hold'
        ? { status: 'HELD', lifecycleQueue: 'held', lifecycleAt: verdict.until, releaseAt: verdict.until }
        : { status: 'REVIEW', lifecycleQueue: 'review', lifecycleAt: NOW_MS, reviewReasons: verdict.reasons, holdUntil: verdict.holdUntil };
  return ledger.write(eventId, owner, {
    step: 'decide',
    set: { decision: 'ACCEPTED', parkedMessage: message, ...parked },
    ...(verdict.kind === 'await' ? {} : { setIfAbsent: { parkedAt: NOW_ISO } }),
    freeLease: true,
  });
}

/** A taken-up HELD referral leaves the index (the releaser stops sending it); the first release time is kept. */
export function markReleased(ledger: LedgerPort, eventId: string, owner: string): Leased {
  return ledger.write(eventId, owner, { step: 'markReleased', setIfAbsent: { releasedAt: NOW_ISO }, remove: QUEUE });
}

/** A retryable failure: note why and free the lease so the next delivery need not wait for it; a lease already lost is ignored. */
export async function release(ledger: LedgerPort, eventId: string, owner: string, message: string): Promise<void> {
  await ledger.write(eventId, owner, { step: 'release', set: { lastError: message }, freeLease: true }).catch((error: unknown) => {
    if (!(error instanceof LeaseLostError)) throw error;
  });
}

// The operator's moves (review, revoke) and the releaser's claim: each from the statuses the machine allows.

/** A reviewer's decision, its time, and their note if they left one. */
const reviewed = (reviewDecision: string, note?: string) => ({
  reviewDecision,
  reviewedAt: NOW_ISO,
  ...(note ? { reviewNote: note } : {}),
});

/**
 * REVIEW → HELD until the hold the worker stored when it parked the referral (`holdUntil`: its
 * acceptance plus REWARD_HOLD, fixed while it is in review), or due now for one parked without it.
 */
export async function approve(ledger: LedgerPort, eventId: string, reviewNote: string | undefined): Moved {
  const at = (await ledger.get(eventId))?.holdUntil ?? NOW_MS;
  return ledger.move(eventId, fromStates('approve'), {
    step: 'approve',
    set: { status: 'HELD', releaseAt: at, lifecycleQueue: 'held', lifecycleAt: at, ...reviewed('approved', reviewNote) },
  });
}

/** REVIEW → REJECTED (`reviewer_rejected`), final. */
export function reject(ledger: LedgerPort, eventId: string, reviewNote: string | undefined): Moved {
  return ledger.move(eventId, fromStates('reject'), {
    step: 'reject',
    set: { status: 'REJECTED', rejectionReason: 'reviewer_rejected', rejectedAt: NOW_ISO, ...reviewed('rejected', reviewNote) },
    remove: QUEUE,
  });
}

/** HELD, REVIEW or AWAITING → REVOKED before anything was issued. */
export function cancel(ledger: LedgerPort, eventId: string, reason: string): Moved {
  return ledger.move(eventId, fromStates('cancel'), {
    step: 'cancel',
    set: { status: 'REVOKED', revokeReason: reason, revokedAt: NOW_ISO, revokedBeforePayout: true },
    remove: QUEUE,
  });
}

/**
 * AWAITING → RECEIVED (accepted, qualified): the redeemer's qualifying event `qualifyingEventId`
 * came in time. Out of the index, no lease: the worker that qualified it begins it next, and the
 * lifecycle's verdict (hold, review, budget) is reached then. Fenced on the deadline read, which
 * never changes: a referral the releaser expired meanwhile is refused.
 */
export function qualify(ledger: LedgerPort, eventId: string, qualifyingEventId: string, qualifyBy: number): Moved {
  return ledger.move(eventId, fromStates('qualify'), {
    step: 'qualify',
    set: { status: 'IN_PROGRESS', qualifiedAt: NOW_ISO, qualifyingEventId },
    expect: { qualifyBy },
    remove: QUEUE,
  });
}

/**
 * AWAITING → NOT_QUALIFIED, final: past its deadline with no qualifying event. It stays in the
 * index (under the same key) until its follow-ups are done (notQualifiedDone), so a releaser run
 * that crashed after this write finishes them on the next run.
 */
export function expire(ledger: LedgerPort, eventId: string, qualifyBy: number): Moved {
  return ledger.move(eventId, fromStates('expire'), {
    step: 'expire',
    set: { status: 'NOT_QUALIFIED', notQualifiedAt: NOW_ISO },
    expect: { qualifyBy },
  });
}

/** NOT_QUALIFIED's claims are released, its outcome captured and announced: it leaves the index. */
export function notQualifiedDone(ledger: LedgerPort, eventId: string): Moved {
  return ledger.move(eventId, ['NOT_QUALIFIED'], { step: 'notQualifiedDone', set: { notQualifiedDoneAt: NOW_ISO }, remove: QUEUE });
}

/**
 * A COMPLETED referral is to be revoked: kept COMPLETED (no worker takes it up) until both rewards
 * are off. With `park` (a refund's, REVOKE_PAID) it is also listed in the index's `revoking` queue
 * in the same write, for the releaser to deactivate both rewards (its role may, the worker's may not).
 */
export function requestRevoke(ledger: LedgerPort, eventId: string, reason: string, options: { park?: boolean } = {}): Moved {
  return ledger.move(eventId, fromStates('revoke'), {
    step: 'requestRevoke',
    setIfAbsent: { revokeReason: reason, revokeRequestedAt: NOW_ISO },
    ...(options.park ? { set: { lifecycleQueue: 'revoking', lifecycleAt: NOW_MS } } : {}),
  });
}

/** A revoke the releaser finished (REVOKED, captured, announced) leaves the `revoking` queue. */
export function revokeDone(ledger: LedgerPort, eventId: string): Moved {
  return ledger.move(eventId, ['REVOKED'], { step: 'revokeDone', remove: QUEUE });
}

export function recordDeactivated(ledger: LedgerPort, eventId: string, role: Role, balanceLeft: string | undefined): Moved {
  return ledger.move(eventId, ['COMPLETED'], {
    step: 'recordDeactivated',
    setIfAbsent: { [`${role}DeactivatedAt`]: NOW_ISO },
    ...(balanceLeft ? { set: { [`${role}BalanceLeft`]: balanceLeft } } : {}),
    present: ['revokeRequestedAt'],
  });
}

/** Both rewards are deactivated: COMPLETED → REVOKED. */
export function finishRevoke(ledger: LedgerPort, eventId: string): Moved {
  return ledger.move(eventId, ['COMPLETED'], {
    step: 'finishRevoke',
    set: { status: 'REVOKED', revokedAt: NOW_ISO },
    present: ['referrerDeactivatedAt', 'redeemerDeactivatedAt'],
  });
}

export function recordRevokeCaptured(ledger: LedgerPort, eventId: string): Moved {
  return ledger.move(eventId, ['REVOKED'], { step: 'recordRevokeCaptured', set: { revokeCapturedAt: NOW_ISO } });
}

/**
 * The releaser's claim to send a due referral's message now: refused if another run sent it less
 * than `resendAfterMs` ago (its message is still on its way), so runs do not pile copies onto a
 * busy queue; a lost send is simply made again after that. Still in the index: HELD, or taken up
 * and not yet released (IN_PROGRESS).
 */
export async function claimReleaseSend(ledger: LedgerPort, eventId: string, resendAfterMs: number): Promise<boolean> {
  const claimed = await ledger.move(eventId, ['HELD', 'IN_PROGRESS'], {
    step: 'claimReleaseSend',
    set: { releaseSentAt: NOW_MS },
    expect: { lifecycleQueue: 'held' },
    olderThan: { releaseSentAt: resendAfterMs },
  });
  return claimed !== undefined;
}
