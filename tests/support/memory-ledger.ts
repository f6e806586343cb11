import type { BeginInput, BeginResult, Decision, FinalStatus, LedgerPort, LedgerRecord, ParkedReferral, ParkedStatus, Role } from '../../lib/domain/ledger-port';
import type { Verdict } from '../../lib/domain/machine';
import { LeaseLostError, posthogDistinctId } from '../../lib/domain/ledger-port';
import type { Referral } from '../../lib/domain/referral';
import type { LifecyclePort, LifecycleRecord } from '../../lib/domain/lifecycle/ledger-port';

/** The lifecycle's counters, which the memory twin also keeps (held to tests/support/ledger-contract.ts's counter spec). */
export type LifecycleCounters = Pick<LifecyclePort, 'reserveBudget' | 'returnBudget' | 'budgetSpent' | 'referrerVelocity'>;

/** One call made to the ledger, in order, for assertions on what was written when. */
export type LedgerCall =
  | { op: 'begin'; eventId: string; owner: string }
  | { op: 'recordCard'; eventId: string; owner: string; role: Role; cardId: string; expiresOn?: string }
  | { op: 'replaceCode'; eventId: string; owner: string; role: Role; oldCode: string; newCode: string }
  | { op: 'recordCustomerIo'; eventId: string; owner: string; finish?: FinalStatus }
  | { op: 'recordPostHog'; eventId: string; owner: string; finish?: FinalStatus }
  | { op: 'recordTakenSeen'; eventId: string; owner: string; role: Role; code: string }
  /** `decision`, `reason`, `gatePassed`: what the verdict stores, as the record's fields name them. */
  | { op: 'decide'; eventId: string; owner: string; verdict: Verdict; decision: Decision; reason?: string; gatePassed?: boolean }
  | { op: 'finish'; eventId: string; owner: string; status: FinalStatus }
  | { op: 'fail'; eventId: string; owner: string; reason: string; message: string }
  | { op: 'release'; eventId: string; owner: string; message: string };

/**
 * An in-memory LedgerPort with lib/adapters/dynamodb/ledger.ts's conditions, held to them by the shared spec
 * (tests/support/ledger-contract.ts, run on both): `begin` and `fail` admit a new record or one
 * open and free (openAndFree, as OPEN_AND_FREE), `begin` keeps codes written earlier; every step
 * after it is fenced on the lease (LeaseLostError otherwise); `replaceCode` only swaps the code it
 * was told is current. Records are copied in and out, so a test cannot change the stored state by
 * accident.
 */
export class MemoryLedger implements LedgerPort, LifecycleCounters {
  public readonly records = new Map<string, LedgerRecord>();
  public readonly calls: LedgerCall[] = [];
  /** Which referral rewarded each redeemer, and which referrals counted for each referrer. */
  public readonly redeemers = new Map<string, string>();
  public readonly referrers = new Map<string, Set<string>>();

  /** Per budget period, the referrals counted and their cents. */
  public readonly budgets = new Map<string, Map<string, number>>();
  /** Per referrer, each referral's first sighting (ms); per referral, its pinned velocity answer. */
  public readonly sightings = new Map<string, Map<string, number>>();
  private readonly velocityAnswers = new Map<string, number>();

  public constructor(public now: () => number = Date.now) {}

  /** Puts a record in place as if an earlier attempt had written it. */
  public seed(record: LedgerRecord): void {
    this.records.set(record.eventId, { ...record });
  }

  public async begin(referral: Referral, input: BeginInput): Promise<BeginResult> {
    this.calls.push({ op: 'begin', eventId: referral.eventId, owner: input.owner });
    const now = this.now();
    const iso = new Date(now).toISOString();
    const existing = this.records.get(referral.eventId);
    if (existing && !openAndFree(existing, now, input.owner)) {
      if (existing.status === 'COMPLETED') return { outcome: 'completed', record: { ...existing } };
      if (existing.status === 'REJECTED') return { outcome: 'rejected', record: { ...existing } };
      if (isParked(existing) && !(existing.status === 'HELD' && Number(existing.releaseAt) <= now)) return { outcome: 'parked', record: { ...existing } };
      return { outcome: 'busy', record: { ...existing } };
    }
    const record: LedgerRecord = {
      ...existing,
      pk: `referral#${referral.eventId}`,
      eventId: referral.eventId,
      status: 'IN_PROGRESS',
      updatedAt: iso,
      leaseOwner: input.owner,
      leaseExpiresAt: input.leaseUntil,
      createdAt: existing?.createdAt ?? iso,
      referrerEmail: existing?.referrerEmail ?? referral.referrerEmail,
      redeemerEmail: existing?.redeemerEmail ?? referral.redeemerEmail,
      customerEmail: existing?.customerEmail ?? referral.customerEmail,
      distinctId: existing?.distinctId ?? posthogDistinctId(referral),
      rewardType: existing?.rewardType ?? input.rewardType,
      rewardAmount: existing?.rewardAmount ?? input.rewardAmount,
      referrerCode: existing?.referrerCode ?? input.codes.referrer,
      redeemerCode: existing?.redeemerCode ?? input.codes.redeemer,
      customerioEventId: existing?.customerioEventId ?? input.customerioEventId,
      attempts: (existing?.attempts ?? 0) + 1,
    };
    this.records.set(referral.eventId, record);
    return { outcome: 'acquired', record: { ...record } };
  }

  public async recordCard(eventId: string, owner: string, role: Role, cardId: string, expiresOn?: string): Promise<LedgerRecord> {
    this.calls.push({ op: 'recordCard', eventId, owner, role, cardId, ...(expiresOn ? { expiresOn } : {}) });
    return this.step(eventId, owner, (record, iso) => ({
      ...record,
      [`${role}CardId`]: cardId,
      [`${role}CardAt`]: iso,
      ...(expiresOn ? { [`${role}ExpiresOn`]: expiresOn } : {}),
    }));
  }

  public async replaceCode(eventId: string, owner: string, role: Role, oldCode: string, newCode: string): Promise<LedgerRecord> {
    this.calls.push({ op: 'replaceCode', eventId, owner, role, oldCode, newCode });
    return this.step(
      eventId,
      owner,
      (record) => ({ ...record, [`${role}Code`]: newCode, codeCollisions: (record.codeCollisions ?? 0) + 1 }),
      (record) => record[`${role}Code`] === oldCode,
    );
  }

  public async recordTakenSeen(eventId: string, owner: string, role: Role, code: string): Promise<LedgerRecord> {
    this.calls.push({ op: 'recordTakenSeen', eventId, owner, role, code });
    return this.step(
      eventId,
      owner,
      (record, iso) => ({ ...record, [`${role}TakenSeenAt`]: iso, [`${role}TakenSeenCode`]: code }),
      (record) => record[`${role}Code`] === code,
    );
  }

  public async recordCustomerIo(eventId: string, owner: string, finish?: FinalStatus): Promise<LedgerRecord> {
    this.calls.push({ op: 'recordCustomerIo', eventId, owner, ...(finish ? { finish } : {}) });
    return this.step(eventId, owner, (record, iso) => finished({ ...record, customerioAt: iso }, iso, finish));
  }

  public async recordPostHog(eventId: string, owner: string, finish?: FinalStatus): Promise<LedgerRecord> {
    this.calls.push({ op: 'recordPostHog', eventId, owner, ...(finish ? { finish } : {}) });
    return this.step(eventId, owner, (record, iso) => finished({ ...record, posthogAt: iso }, iso, finish));
  }

  public async decide(eventId: string, owner: string, verdict: Verdict, parked?: ParkedReferral): Promise<LedgerRecord> {
    const decision: Decision = verdict.kind === 'reject' ? 'REJECTED' : 'ACCEPTED';
    const reason = verdict.kind === 'reject' ? verdict.reason : undefined;
    this.calls.push({ op: 'decide', eventId, owner, verdict, decision, ...(reason ? { reason } : {}), ...(verdict.kind === 'pay' ? { gatePassed: true } : {}) });
    if (verdict.kind === 'reject') return this.step(eventId, owner, (record) => ({ ...record, decision, rejectionReason: verdict.reason }));
    if (verdict.kind === 'pay') return this.step(eventId, owner, (record, iso) => ({ ...record, decision, gatePassedAt: iso }));
    if (!parked) throw new Error(`a ${verdict.kind} verdict needs the referral's message`);
    // As the DynamoDB ledger's: parked (status, the lifecycle index's keys, the message) and the lease freed, in one write.
    return this.step(eventId, owner, (record, iso) => {
      const { leaseOwner: _owner, leaseExpiresAt: _expires, ...rest } = record;
      const lifecycle =
        verdict.kind === 'hold'
          ? { status: 'HELD' as const, releaseAt: verdict.until, lifecycleQueue: 'held', lifecycleAt: verdict.until, heldAt: iso }
          : { status: 'REVIEW' as const, lifecycleQueue: 'review', lifecycleAt: this.now(), reviewReasons: verdict.reasons, reviewSince: iso, holdUntil: verdict.holdUntil };
      return { ...rest, decision, ...lifecycle, parkedMessage: parked.message, parkedAt: iso, budgetCents: parked.budgetCents } as LifecycleRecord;
    });
  }

  public async finish(eventId: string, owner: string, status: FinalStatus): Promise<LedgerRecord> {
    this.calls.push({ op: 'finish', eventId, owner, status });
    return this.step(eventId, owner, (record, iso) => finished(record, iso, status));
  }

  public async claimRedeemer(person: string, eventId: string, staleHolder?: string): Promise<boolean> {
    const holder = this.redeemers.get(person);
    if (holder !== undefined && holder !== eventId && holder !== staleHolder) return false;
    this.redeemers.set(person, eventId);
    return true;
  }

  public async releaseRedeemer(person: string, eventId: string): Promise<void> {
    if (this.redeemers.get(person) === eventId) this.redeemers.delete(person);
  }

  public async redeemerHolder(person: string): Promise<string | undefined> {
    return this.redeemers.get(person);
  }

  public async releaseReferrerSlot(person: string, eventId: string): Promise<void> {
    this.referrers.get(person)?.delete(eventId);
  }

  public async referrerSlotHolders(person: string): Promise<string[]> {
    return [...(this.referrers.get(person) ?? [])];
  }

  public async claimReferrerSlot(person: string, eventId: string, cap: number): Promise<boolean> {
    const counted = this.referrers.get(person) ?? new Set<string>();
    if (counted.has(eventId)) return true;
    if (counted.size >= cap) return false;
    this.referrers.set(person, counted.add(eventId));
    return true;
  }

  /** As lib/adapters/dynamodb/budget-counter.ts: once per referral, refused past the limit when one is given. */
  public async reserveBudget(period: string, eventId: string, cents: number, limitCents?: number): Promise<boolean> {
    if (limitCents !== undefined && cents > limitCents) return false;
    const counted = this.budgets.get(period) ?? new Map<string, number>();
    if (counted.has(eventId)) return true;
    const spent = [...counted.values()].reduce((a, b) => a + b, 0);
    if (limitCents !== undefined && spent + cents > limitCents) return false;
    this.budgets.set(period, counted.set(eventId, cents));
    return true;
  }

  /** The share counted (not the one passed) comes back, once. */
  public async returnBudget(period: string, eventId: string, _cents: number): Promise<boolean> {
    return this.budgets.get(period)?.delete(eventId) ?? false;
  }

  public async budgetSpent(period: string): Promise<{ cents: number; referrals: number }> {
    const counted = this.budgets.get(period) ?? new Map<string, number>();
    return { cents: [...counted.values()].reduce((a, b) => a + b, 0), referrals: counted.size };
  }

  /** As the DynamoDB ledger's: first sightings, the window up to this one's, capped, the first answer pinned. */
  public async referrerVelocity(person: string, eventId: string, windowMs: number, cap: number): Promise<number> {
    const pinned = this.velocityAnswers.get(`${person}#${eventId}`);
    if (pinned !== undefined) return Math.min(pinned, cap);
    const seen = this.sightings.get(person) ?? new Map<string, number>();
    if (!seen.has(eventId)) seen.set(eventId, this.now());
    this.sightings.set(person, seen);
    const mine = seen.get(eventId)!;
    const count = Math.min([...seen.values()].filter((at) => at <= mine && at > mine - windowMs).length, cap);
    this.velocityAnswers.set(`${person}#${eventId}`, count);
    return count;
  }

  public async fail(eventId: string, owner: string, reason: string, message: string): Promise<boolean> {
    this.calls.push({ op: 'fail', eventId, owner, reason, message });
    const now = this.now();
    const iso = new Date(now).toISOString();
    const existing = this.records.get(eventId);
    if (existing && !openAndFree(existing, now, owner)) return false;
    const { leaseOwner: _owner, leaseExpiresAt: _expires, ...rest } = existing ?? ({} as Partial<LedgerRecord>);
    this.records.set(eventId, {
      ...(rest as LedgerRecord),
      pk: `referral#${eventId}`,
      eventId,
      status: 'FAILED',
      failureReason: reason,
      lastError: message,
      failedAt: iso,
      updatedAt: iso,
      createdAt: existing?.createdAt ?? iso,
    });
    return true;
  }

  public async release(eventId: string, owner: string, message: string): Promise<void> {
    this.calls.push({ op: 'release', eventId, owner, message });
    try {
      await this.step(eventId, owner, (record) => {
        const { leaseOwner: _owner, leaseExpiresAt: _expires, ...rest } = record;
        return { ...rest, lastError: message };
      });
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
    }
  }

  public async get(eventId: string): Promise<LedgerRecord | undefined> {
    const record = this.records.get(eventId);
    return record && { ...record };
  }

  private step(
    eventId: string,
    owner: string,
    update: (record: LedgerRecord, iso: string) => LedgerRecord,
    condition: (record: LedgerRecord) => boolean = () => true,
  ): LedgerRecord {
    const record = this.records.get(eventId);
    if (!record || record.leaseOwner !== owner || !condition(record)) throw new LeaseLostError(eventId);
    const updated = { ...update(record, new Date(this.now()).toISOString()), updatedAt: new Date(this.now()).toISOString() };
    this.records.set(eventId, updated);
    return { ...updated };
  }
}

/**
 * As lib/adapters/dynamodb/ledger.ts's OPEN_AND_FREE: not finished, not parked (a HELD record only once its
 * `releaseAt` has passed), and its lease free, expired or already `owner`'s.
 */
function openAndFree(record: LedgerRecord, now: number, owner: string): boolean {
  if (record.status === 'COMPLETED' || record.status === 'REJECTED' || record.status === 'REVIEW' || record.status === 'REVOKED') return false;
  if (record.status === 'HELD' && !(Number(record.releaseAt) <= now)) return false;
  return record.leaseExpiresAt === undefined || record.leaseExpiresAt < now || record.leaseOwner === owner;
}

const isParked = (record: LedgerRecord): record is LedgerRecord & { status: ParkedStatus } =>
  record.status === 'HELD' || record.status === 'REVIEW' || record.status === 'REVOKED';

/** As lib/adapters/dynamodb/ledger.ts's `finishing`: with a final status, the record ends and its lease goes. */
function finished(record: LedgerRecord, iso: string, finish: FinalStatus | undefined): LedgerRecord {
  if (!finish) return record;
  const { leaseOwner: _owner, leaseExpiresAt: _expires, ...rest } = record;
  return finish === 'COMPLETED' ? { ...rest, status: 'COMPLETED', completedAt: iso } : { ...rest, status: 'REJECTED', rejectedAt: iso };
}
