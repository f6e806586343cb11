import { PermanentError, RetryableError } from './errors';
import type { FinalStatus, Ledger, LedgerRecord, Role } from './ledger';
import { ROLES } from './ledger';
import { canonicalEmail } from './identity';
import type { Referral } from './referral';
import { withRetry, type RetryOptions } from './retry';
import { staticRefusal, type ProgramRules, type RefusalReason } from './rules';
import { deterministicUuid } from './uuid';
import { lifecycleGate, type LifecycleDeps } from './lifecycle/hold';

/** The slice of the Shopify client fulfilment needs (lib/shopify.ts implements it). */
export interface GiftCardIssuer {
  createGiftCard(input: { code: string; amount: string; note: string; expiresOn?: string }): Promise<
    { status: 'created'; id: string } | { status: 'taken' }
  >;
  findGiftCardByCode(code: string): Promise<{ id: string; note: string | null } | undefined>;
}

/** The slice of the Customer.io client fulfilment needs (lib/customerio.ts implements it). */
export interface EventSender {
  sendEvent(
    identifier: string,
    event: { name: string; id: string; timestamp: number; data: Record<string, string> },
  ): Promise<void>;
}

/** The slice of the PostHog capture client fulfilment needs (lib/posthog-capture.ts implements it). */
export interface OutcomeTracker {
  capture(event: {
    uuid: string;
    event: string;
    distinctId: string;
    properties: Record<string, string | number>;
  }): Promise<void>;
}

export type Checkpoint = 'begun' | 'decided' | 'card:referrer' | 'card:redeemer' | 'customerio' | 'posthog' | 'completed';

export interface FulfilDeps {
  ledger: Ledger;
  shopify: GiftCardIssuer;
  customerio: EventSender;
  rewardAmount: string;
  customerioEvent: string;
  newCode: () => string;
  customerioEventId: (eventId: string) => string;
  /** Program rules; without them every referral is accepted. */
  rules?: ProgramRules;
  /** Captures the outcome into PostHog; skipped when absent (no POSTHOG_API_KEY). */
  posthog?: OutcomeTracker;
  /** Rewards expire this many days after the referral is first taken up; none when absent. */
  rewardExpiresDays?: number;
  /** Named in the PostHog capture (`reward_type`). */
  rewardType?: string;
  retry?: Omit<RetryOptions, 'deadline'>;
  now?: () => number;
  /** Called after each durable step; tests and the chaos soak throw here to simulate a crash. */
  checkpoint?: (step: Checkpoint, eventId: string) => void | Promise<void>;
  /** Hold, review guards and budgets (lib/lifecycle/hold.ts); absent: every accepted referral is paid at once. */
  lifecycle?: LifecycleDeps;
}

export interface FulfilContext {
  /** Unique per attempt: the lease holder's name in the ledger. */
  owner: string;
  /** Epoch ms by which this invocation must have stopped working. */
  deadline: number;
}

export type FulfilResult =
  | { outcome: 'completed' | 'already-completed' }
  | { outcome: 'rejected' | 'already-rejected'; reason: string }
  /** Parked by the lifecycle: held until `releaseAt`, or in review; nothing issued yet. */
  | { outcome: 'held'; releaseAt: number }
  | { outcome: 'review'; reasons: string[] }
  | { outcome: 'already-parked'; status: string };

/** More collisions than this on one reward means something other than chance (a code generator fault). */
const MAX_CODE_COLLISIONS = 3;

/**
 * Turns one referral into two gift cards and one Customer.io event, exactly once. Progress
 * lives in the ledger, so any retry (duplicate webhook, redelivery, crash, DLQ redrive)
 * resumes at the first step not done, with the codes chosen the first time.
 */
export async function fulfilReferral(referral: Referral, deps: FulfilDeps, context: FulfilContext): Promise<FulfilResult> {
  const { ledger } = deps;
  const { owner, deadline } = context;
  const { eventId } = referral;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, { ...deps.retry, deadline });
  const checkpoint = async (step: Checkpoint) => deps.checkpoint?.(step, eventId);

  const begun = await ledger.begin(referral, {
    owner,
    // A few seconds past our deadline: the invocation is dead by then, so a successor may take over.
    leaseUntil: deadline + 5_000,
    codes: { referrer: deps.newCode(), redeemer: deps.newCode() },
    customerioEventId: deps.customerioEventId(eventId),
    expiresOn: deps.rewardExpiresDays ? expiryDate((deps.now ?? Date.now)(), deps.rewardExpiresDays) : undefined,
  });
  if (begun.outcome === 'completed') return { outcome: 'already-completed' };
  if (begun.outcome === 'rejected') return { outcome: 'already-rejected', reason: begun.record.rejectionReason ?? 'unknown' };
  if (begun.outcome === 'parked') return { outcome: 'already-parked', status: begun.record.status };
  if (begun.outcome === 'busy') throw new RetryableError('another worker is fulfilling this referral');
  let record = begun.record;
  await checkpoint('begun');

  // The last step of a referral also ends it, in the same ledger write: PostHog's capture when
  // it is still due, else Customer.io's event (or the refusal's own final write).
  const posthog = record.posthogAt ? undefined : deps.posthog;
  const tracking = posthog !== undefined;
  const track = async (event: string, finish: FinalStatus, extra: Record<string, string> = {}) => {
    if (!posthog) return;
    await retry(() =>
      posthog.capture({
        // Same referral, same outcome, same uuid: PostHog drops the repeat of a retried capture.
        uuid: deterministicUuid(`posthog:${event}:${eventId}`),
        event,
        distinctId: referral.distinctId || referral.redeemerEmail,
        properties: {
          referral_event_id: eventId,
          reward_type: deps.rewardType ?? 'gift_card',
          reward_amount: Number(deps.rewardAmount),
          referrer_email: referral.referrerEmail,
          redeemer_email: referral.redeemerEmail,
          ...extra,
        },
      }),
    );
    record = await ledger.recordPostHog(eventId, owner, finish);
    await checkpoint('posthog');
  };

  if (!record.decision) {
    const refusal = await applyRules(referral, deps);
    record = await ledger.decide(eventId, owner, refusal ? 'REJECTED' : 'ACCEPTED', refusal);
    await checkpoint('decided');
  }
  if (record.decision === 'REJECTED') {
    const reason = record.rejectionReason ?? 'unknown';
    if (tracking) await track('referral reward rejected', 'REJECTED', { reason });
    else await ledger.finishRejected(eventId, owner);
    return { outcome: 'rejected', reason };
  }

  if (deps.lifecycle) {
    const gate = await lifecycleGate(referral, record, deps.lifecycle, { ...deps, owner, retry, now: deps.now ?? Date.now });
    if (gate.outcome !== 'pay') return gate;
    record = gate.record;
  }

  const issueCard = async (role: Role): Promise<void> => {
    if (record[`${role}CardId`]) return;
    let code = record[`${role}Code`];
    for (let collisions = 0; ; ) {
      const created = await retry(() =>
        deps.shopify.createGiftCard({
          code,
          amount: deps.rewardAmount,
          note: giftCardNote(eventId, role),
          ...(record.expiresOn ? { expiresOn: record.expiresOn } : {}),
        }),
      );
      let cardId = created.status === 'created' ? created.id : undefined;
      if (!cardId) {
        // TAKEN for a code we persisted: most likely our own earlier attempt succeeded and we never heard.
        const found = await retry(() => deps.shopify.findGiftCardByCode(code));
        if (!found) {
          // Never treat "not found yet" as a collision: a new code could pay this person twice.
          throw new RetryableError(`Shopify reports the ${role} code taken but the card is not searchable yet`);
        }
        if (isOurCard(found.note, eventId, role)) cardId = found.id;
      }
      if (cardId) {
        // Await first, then read `record`: the other role may have replaced its code meanwhile.
        const written = await ledger.recordCard(eventId, owner, role, cardId);
        record = mergeCard(record, written, role);
        await checkpoint(`card:${role}`);
        return;
      }
      if (++collisions > MAX_CODE_COLLISIONS) {
        throw new PermanentError('code_collisions', `${role} code collided ${collisions} times in a row`);
      }
      const next = deps.newCode();
      const updated = await ledger.replaceCode(eventId, owner, role, code, next);
      record = { ...record, [`${role}Code`]: updated[`${role}Code`] };
      code = next;
    }
  };

  // The two cards are independent: create them side by side, but let both settle before
  // deciding, so neither is abandoned between Shopify's answer and the ledger write.
  const settled = await Promise.allSettled(ROLES.map(issueCard));
  const failures = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length > 0) throw failures.find((error) => error instanceof PermanentError) ?? failures[0];

  if (!record.customerioAt) {
    await retry(() =>
      deps.customerio.sendEvent(referral.customerEmail, {
        name: deps.customerioEvent,
        // Derived from the PostHog uuid: Customer.io drops a repeated id, so a resend never mails twice.
        id: record.customerioEventId,
        // Now, not the event's time: Customer.io ignores events older than 72 h for campaigns,
        // and a DLQ redrive days later must still mail both people.
        timestamp: Math.floor((deps.now ?? Date.now)() / 1000),
        data: {
          discountreferrer: record.referrerCode,
          discountreferee: record.redeemerCode,
          referreremail: referral.referrerEmail,
          refereeemail: referral.redeemerEmail,
        },
      }),
    );
    record = await ledger.recordCustomerIo(eventId, owner, tracking ? undefined : 'COMPLETED');
    await checkpoint('customerio');
  }

  if (tracking) await track('referral reward fulfilled', 'COMPLETED');
  // Customer.io recorded by an earlier attempt that stopped before the end.
  else if (record.status !== 'COMPLETED') await ledger.complete(eventId, owner);
  await checkpoint('completed');
  return { outcome: 'completed' };
}

/**
 * Decides whether the referral may earn rewards. The per-person rules are claims in the ledger
 * that admit the same referral again on a retry, so re-running this before the decision is
 * stored reaches the same verdict; once stored it is never run again.
 */
async function applyRules(referral: Referral, deps: FulfilDeps): Promise<RefusalReason | undefined> {
  const rules = deps.rules;
  if (!rules) return undefined;
  const refusal = staticRefusal(referral, rules);
  if (refusal) return refusal;
  const { ledger } = deps;
  const redeemer = canonicalEmail(referral.redeemerEmail);
  if (!(await ledger.claimRedeemer(redeemer, referral.eventId))) return 'redeemer_already_rewarded';
  if (rules.maxRewardsPerReferrer > 0) {
    const counted = await ledger.claimReferrerSlot(canonicalEmail(referral.referrerEmail), referral.eventId, rules.maxRewardsPerReferrer);
    if (!counted) {
      // Refused for the referrer's cap: the redeemer was not rewarded, so another referrer may still bring them in.
      await ledger.releaseRedeemer(redeemer, referral.eventId);
      return 'referrer_cap_reached';
    }
  }
  return undefined;
}

/** The UTC date `days` after `now`, as Shopify's `expiresOn` takes it. */
export function expiryDate(now: number, days: number): string {
  return new Date(now + days * 86_400_000).toISOString().slice(0, 10);
}

/** Written on every card so a card found by code can be recognised as this referral's, for this role. */
export function giftCardNote(eventId: string, role: Role): string {
  return `referral-rewards ${role} reward for PostHog event ${eventId}`;
}

const NOTE_PATTERN = /^referral-rewards (referrer|redeemer) reward for PostHog event (\S+)$/;

/** The referral and role a card's note names (giftCardNote read back), or undefined for any other note. */
export function parseGiftCardNote(note: string | null | undefined): { role: Role; eventId: string } | undefined {
  const match = NOTE_PATTERN.exec(note ?? '');
  return match ? { role: match[1] as Role, eventId: match[2] } : undefined;
}

function isOurCard(note: string | null, eventId: string, role: Role): boolean {
  return note === giftCardNote(eventId, role);
}

/** The two card steps run concurrently: keep each one's own result, not the other's stale copy. */
function mergeCard(current: LedgerRecord, written: LedgerRecord, role: Role): LedgerRecord {
  return { ...current, [`${role}CardId`]: written[`${role}CardId`], [`${role}CardAt`]: written[`${role}CardAt`] };
}
