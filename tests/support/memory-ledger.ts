import type {
  BeginInput,
  BeginResult,
  Change,
  Counter,
  Decision,
  FinalStatus,
  LedgerPort,
  LedgerRecord,
  LedgerStatus,
  ParkedStatus,
  QualifyingFact,
  Role,
} from '../../lib/domain/ledger-port';
import { applyBegin, applyChange, LeaseLostError } from '../../lib/domain/ledger-port';
import type { Verdict } from '../../lib/domain/machine';
import type { Referral } from '../../lib/domain/referral';
import type { LifecycleQueue, LifecycleRecord } from '../../lib/domain/lifecycle/record';

/** One call made to the ledger, in order, for assertions on what was written when: a write by the domain step it records. */
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
  | { op: 'release'; eventId: string; owner: string; message: string }
  | { op: 'markReleased'; eventId: string; owner: string };

/**
 * An in-memory LedgerPort with lib/adapters/dynamodb/ledger.ts's conditions, held to them by the shared spec
 * (tests/support/ledger-contract.ts, run on both): `begin` and `fail` admit a new record or one
 * open and free (openAndFree, as the adapter's), `begin` keeps codes written earlier; `write` is
 * fenced on the lease (LeaseLostError otherwise) and a Change's conditions, `move` on the status. Records are copied in and out, so a test cannot change the stored state by
 * accident.
 */
export class MemoryLedger implements LedgerPort {
  public readonly records = new Map<string, LedgerRecord>();
  public readonly calls: LedgerCall[] = [];
  /** Which referral rewarded each redeemer, and which referrals counted for each referrer. */
  public readonly redeemers = new Map<string, string>();
  public readonly referrers = new Map<string, Set<string>>();
  /** Which referral each person key points at; the latest qualifying event per key; the person events handled. */
  public readonly persons = new Map<string, string>();
  public readonly facts = new Map<string, QualifyingFact>();
  public readonly personEvents = new Map<string, { role: string; expiresAt: number }>();

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
    const existing = this.records.get(referral.eventId);
    if (existing && !openAndFree(existing, now, input.owner)) {
      if (existing.status === 'COMPLETED') return { outcome: 'completed', record: { ...existing } };
      if (existing.status === 'REJECTED') return { outcome: 'rejected', record: { ...existing } };
      if (isParked(existing) && !(existing.status === 'HELD' && Number(existing.releaseAt) <= now))
        return { outcome: 'parked', record: { ...existing } };
      return { outcome: 'busy', record: { ...existing } };
    }
    const record = applyBegin(existing, referral, input, now);
    this.records.set(referral.eventId, record);
    return { outcome: 'acquired', record: { ...record } };
  }

  public async write(eventId: string, owner: string, change: Change): Promise<LedgerRecord> {
    this.calls.push(callOf(change, eventId, owner));
    const record = this.records.get(eventId);
    if (!record || record.leaseOwner !== owner || !this.holds(record, change)) throw new LeaseLostError(eventId);
    return this.apply(eventId, record, change);
  }

  public async move(eventId: string, from: readonly LedgerStatus[], change: Change): Promise<LedgerRecord | undefined> {
    const record = this.records.get(eventId);
    if (!record || !from.includes(record.status) || !this.holds(record, change)) return undefined;
    return this.apply(eventId, record, change);
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

  public async get(eventId: string): Promise<LedgerRecord | undefined> {
    const record = this.records.get(eventId);
    return record && { ...record };
  }

  /** As lib/adapters/dynamodb/ledger.ts (and budget-counter.ts): once per referral, refused past the limit when one is given. */
  public async count(counter: Counter, eventId: string, options: { limit?: number; takeOver?: string } = {}): Promise<boolean> {
    const { limit, takeOver } = options;
    if (counter.kind === 'redeemer' || counter.kind === 'person') {
      const holders = counter.kind === 'redeemer' ? this.redeemers : this.persons;
      const holder = holders.get(counter.person);
      if (holder !== undefined && holder !== eventId && holder !== takeOver) return false;
      holders.set(counter.person, eventId);
      return true;
    }
    if (counter.kind === 'referrer') {
      const counted = this.referrers.get(counter.person) ?? new Set<string>();
      if (counted.has(eventId)) return true;
      if (limit !== undefined && counted.size >= limit) return false;
      this.referrers.set(counter.person, counted.add(eventId));
      return true;
    }
    if (limit !== undefined && counter.cents > limit) return false;
    const counted = this.budgets.get(counter.period) ?? new Map<string, number>();
    if (counted.has(eventId)) return true;
    const spent = [...counted.values()].reduce((a, b) => a + b, 0);
    if (limit !== undefined && spent + counter.cents > limit) return false;
    this.budgets.set(counter.period, counted.set(eventId, counter.cents));
    return true;
  }

  /** Only this referral's own count goes; a budget gives back the share counted (not the one passed), once. */
  public async uncount(counter: Counter, eventId: string): Promise<boolean> {
    if (counter.kind === 'redeemer') return this.redeemers.get(counter.person) === eventId && this.redeemers.delete(counter.person);
    if (counter.kind === 'person') return this.persons.get(counter.person) === eventId && this.persons.delete(counter.person);
    if (counter.kind === 'referrer') return this.referrers.get(counter.person)?.delete(eventId) ?? false;
    return this.budgets.get(counter.period)?.delete(eventId) ?? false;
  }

  public async holders(counter: Counter): Promise<string[]> {
    if (counter.kind === 'redeemer') return this.redeemers.has(counter.person) ? [this.redeemers.get(counter.person)!] : [];
    if (counter.kind === 'person') return this.persons.has(counter.person) ? [this.persons.get(counter.person)!] : [];
    if (counter.kind === 'referrer') return [...(this.referrers.get(counter.person) ?? [])];
    return [];
  }

  public async spent(period: string): Promise<{ cents: number; referrals: number }> {
    const counted = this.budgets.get(period) ?? new Map<string, number>();
    return { cents: [...counted.values()].reduce((a, b) => a + b, 0), referrals: counted.size };
  }

  /** As the DynamoDB ledger's: first sightings, the window up to this one's, capped, the first answer pinned. */
  public async velocity(person: string, eventId: string, windowMs: number, cap: number): Promise<number> {
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

  /** As the DynamoDB ledger's: the later event is kept. */
  public async noteQualifying(person: string, fact: QualifyingFact): Promise<void> {
    const held = this.facts.get(person);
    if (!held || held.occurredAt < fact.occurredAt) this.facts.set(person, { ...fact });
  }

  public async qualifying(person: string): Promise<QualifyingFact | undefined> {
    const fact = this.facts.get(person);
    return fact && { ...fact };
  }

  public async markPersonEvent(eventId: string, role: 'qualify' | 'revoke', expiresAt: number): Promise<void> {
    this.personEvents.set(eventId.toLowerCase(), { role, expiresAt });
  }

  public async personEventMarked(eventId: string): Promise<boolean> {
    return this.personEvents.has(eventId.toLowerCase());
  }

  public async waiting(queue: LifecycleQueue, until = Number.MAX_SAFE_INTEGER, limit = 1_000): Promise<LifecycleRecord[]> {
    return [...this.records.values()]
      .map((record) => record as LifecycleRecord)
      .filter((record) => record.lifecycleQueue === queue && Number(record.lifecycleAt) <= until)
      .sort((a, b) => Number(a.lifecycleAt) - Number(b.lifecycleAt))
      .slice(0, limit)
      .map((record) => ({ ...record }));
  }

  /** A Change's conditions beyond its fence, as the DynamoDB ledger's expression states them. */
  private holds(record: LedgerRecord, change: Change): boolean {
    const fields = record as unknown as Record<string, unknown>;
    const now = this.now();
    return (
      Object.entries(change.expect ?? {}).every(([key, value]) => fields[key] === value) &&
      (change.present ?? []).every((key) => fields[key] !== undefined) &&
      Object.entries(change.olderThan ?? {}).every(([key, ms]) => fields[key] === undefined || Number(fields[key]) < now - ms)
    );
  }

  private apply(eventId: string, record: LedgerRecord, change: Change): LedgerRecord {
    const next = applyChange(record, change, this.now());
    this.records.set(eventId, next);
    return { ...next };
  }
}

/** The call a write records, read back from its Change as the step named it. */
function callOf(change: Change, eventId: string, owner: string): LedgerCall {
  const set = change.set ?? {};
  const role = [...Object.keys(set), ...Object.keys(change.expect ?? {})]
    .map((key) => /^(referrer|redeemer)[A-Z]/.exec(key)?.[1])
    .find(Boolean) as Role;
  const base = { eventId, owner };
  const finish = set.status ? { finish: set.status as FinalStatus } : {};
  switch (change.step) {
    case 'recordCard':
      return {
        op: 'recordCard',
        ...base,
        role,
        cardId: String(set[`${role}CardId`]),
        ...(set[`${role}ExpiresOn`] ? { expiresOn: String(set[`${role}ExpiresOn`]) } : {}),
      };
    case 'replaceCode':
      return { op: 'replaceCode', ...base, role, oldCode: String(change.expect?.[`${role}Code`]), newCode: String(set[`${role}Code`]) };
    case 'recordTakenSeen':
      return { op: 'recordTakenSeen', ...base, role, code: String(set[`${role}TakenSeenCode`]) };
    case 'recordCustomerIo':
    case 'recordPostHog':
      return { op: change.step, ...base, ...finish };
    case 'finish':
      return { op: 'finish', ...base, status: set.status as FinalStatus };
    case 'release':
      return { op: 'release', ...base, message: String(set.lastError) };
    case 'decide': {
      const decision = set.decision as Decision;
      const reason = set.rejectionReason as string | undefined;
      const verdict: Verdict =
        decision === 'REJECTED'
          ? { kind: 'reject', reason: reason ?? 'unknown' }
          : set.status === 'AWAITING'
            ? { kind: 'await', until: Number(set.qualifyBy) }
            : set.status === 'HELD'
              ? { kind: 'hold', until: Number(set.releaseAt) }
              : set.status === 'REVIEW'
                ? { kind: 'review', reasons: set.reviewReasons as never, holdUntil: Number(set.holdUntil) }
                : { kind: 'pay' };
      return {
        op: 'decide',
        ...base,
        verdict,
        decision,
        ...(reason ? { reason } : {}),
        ...(verdict.kind === 'pay' ? { gatePassed: true } : {}),
      };
    }
    default:
      return { op: 'markReleased', ...base };
  }
}

/**
 * As lib/adapters/dynamodb/ledger.ts's openAndFree: not finished, not parked (a HELD record only once its
 * `releaseAt` has passed), and its lease free, expired or already `owner`'s.
 */
function openAndFree(record: LedgerRecord, now: number, owner: string): boolean {
  if (['COMPLETED', 'REJECTED', 'REVIEW', 'REVOKED', 'AWAITING', 'NOT_QUALIFIED'].includes(record.status)) return false;
  if (record.status === 'HELD' && !(Number(record.releaseAt) <= now)) return false;
  return record.leaseExpiresAt === undefined || record.leaseExpiresAt < now || record.leaseOwner === owner;
}

const isParked = (record: LedgerRecord): record is LedgerRecord & { status: ParkedStatus } =>
  ['HELD', 'REVIEW', 'REVOKED', 'AWAITING', 'NOT_QUALIFIED'].includes(record.status);
