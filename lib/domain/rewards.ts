import { claimPerPersonRules, claimReferrerCap, releaseClaims } from './claims';
import { CONTENTION_RETRY_MS, PermanentError, RetryableError } from './errors';
import { posthogDistinctId, ROLES, type FinalStatus, type LedgerPort, type LedgerRecord, type RewardType, type Role } from './ledger-port';
import type { Referral } from './referral';
import { canonicalEmail } from './identity';
import { resolveReferrer, type ReferralCodeDeps } from './referral-codes';
import { withRetry, type RetryOptions } from '../infra/retry';
import { staticRefusal, vouchRefusal, type ProgramRules } from './rules';
import { captureOutcome } from './lifecycle/capture';
import { lifecycleVerdict, takeUp, type LifecycleDeps } from './lifecycle/hold';
import { lastStep, stateOf, type Verdict } from './machine';
import { decide, finish as finishStep, recordCard, recordCustomerIo, recordPostHog, recordTakenSeen, replaceCode } from './steps';
import type { EventSender, OutcomeDetails, OutcomeTracker } from './notify-ports';
import { announce, type Announcer } from './announce';
import {
  capturedAt,
  personEventsOn,
  qualifyFromFacts,
  releasePersonKeys,
  takePersonKeys,
  waitsForQualification,
  type QualificationRules,
} from './qualify';

/**
 * The slice of a reward issuer fulfilment needs: gift cards (lib/adapters/shopify/gift-cards.ts) or
 * discount codes (lib/adapters/shopify/discount-codes.ts). A TAKEN answer's `sends` says how often
 * that one call sent the create (a transport that renews its token resends): more than 1, and the
 * reward holding the code may be the one our first send made.
 */
export interface RewardIssuer {
  createGiftCard(input: {
    code: string;
    amount: string;
    note: string;
    expiresOn?: string;
  }): Promise<{ status: 'created'; id: string } | { status: 'taken'; sends?: number }>;
  findGiftCardByCode(code: string): Promise<RewardLookup>;
}

/**
 * What a look-up by code found: every reward whose code may be this one (Shopify's gift-card
 * search matches on the last characters), and whether that is all of them (`complete` false when
 * the page came back full: more may exist than were returned).
 */
export interface RewardLookup {
  matches: { id: string; note: string | null }[];
  complete: boolean;
}

/** The fields in which a queue message may differ from the ledger's copy of the referral (the ledger's is used). */
const MISMATCH_FIELDS = ['referrerEmail', 'redeemerEmail', 'customerEmail', 'distinctId'] as const;
export type ReferralMismatch = { field: (typeof MISMATCH_FIELDS)[number]; message: string; ledger: string }[];

// The outbound ports speak the domain; the adapters own the wire shapes (lib/domain/notify-ports.ts).
export type { EventSender, FulfilmentMessage } from './notify-ports';

export type Checkpoint = 'begun' | 'decided' | 'card:referrer' | 'card:redeemer' | 'customerio' | 'posthog' | 'completed';

export interface FulfilDeps extends Announcer {
  ledger: LedgerPort;
  /** The issuer for the configured `rewardType`. */
  shopify: RewardIssuer;
  /**
   * An issuer per reward type, so a referral begun under another REWARD_TYPE is still paid (and its
   * lost-response reward still found) the way it began; without it only `shopify` is available.
   */
  issuers?: Partial<Record<RewardType, RewardIssuer>>;
  customerio: EventSender;
  rewardAmount: string;
  customerioEvent: string;
  newCode: () => string;
  customerioEventId: (eventId: string) => string;
  /** Program rules; without them every referral is accepted. */
  rules?: ProgramRules;
  /** Captures the outcome into PostHog; skipped when absent (no POSTHOG_API_KEY). */
  posthog?: OutcomeTracker;
  /** Each reward is issued with this many days of validity left; none when absent. */
  rewardExpiresDays?: number;
  /** What a referral begun now pays (REWARD_TYPE; default gift_card); fixed in the ledger at begin. */
  rewardType?: RewardType;
  /** Told when a message's referral differs from the ledger's copy; the ledger's is what is used. */
  onMismatch?: (mismatch: ReferralMismatch) => void;
  retry?: Omit<RetryOptions, 'deadline'>;
  now?: () => number;
  /** Called after each durable step; tests and the chaos soak throw here to simulate a crash. */
  checkpoint?: (step: Checkpoint, eventId: string) => void | Promise<void>;
  /** Hold, review guards and budgets (lib/domain/lifecycle/hold.ts); absent: every accepted referral is paid at once. */
  lifecycle?: LifecycleDeps;
  /** Referral codes (lib/domain/referral-codes.ts): a code names the referrer; absent, a code is carried unresolved. */
  referralCodes?: ReferralCodeDeps;
  /** Told when an event named a referrer email other than its code's owner: the owner is paid, this is for whoever investigates. */
  onIgnoredReferrerEmail?: (named: string, owner: string) => void;
  /** The collision's confirmation window (DEFAULT_COLLISION_CONFIRM_MS); the pipeline harness and the soak shorten it. */
  collisionConfirmMs?: number;
  /** Pay on value (lib/domain/qualify.ts): absent, or with no QUALIFY_EVENT, an accepted referral goes straight to the lifecycle. */
  qualification?: QualificationRules;
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
  /** Waiting for the redeemer's qualifying event until `qualifyBy` (epoch ms); nothing issued yet. */
  | { outcome: 'awaiting'; qualifyBy: number }
  | { outcome: 'already-parked'; status: string };

/** More collisions than this on one reward means something other than chance (a code generator fault). */
const MAX_CODE_COLLISIONS = 3;

/**
 * The look-up by code is a search query (https://shopify.dev/docs/api/usage/search-syntax), and
 * Shopify documents no bound on how soon a new card is searchable; the closing review saw it lag.
 * 10 minutes is long past any plausible index lag (unverified against Shopify: an assumption). The
 * retry is hinted to wait out the window, which the queue's 6-minute visibility timeout caps: it
 * ends on the second redelivery after the first sighting.
 */
const DEFAULT_COLLISION_CONFIRM_MS = 10 * 60_000;

/**
 * Turns one referral into two gift cards and one Customer.io event, exactly once. Progress
 * lives in the ledger, so any retry (duplicate webhook, redelivery, crash, DLQ redrive)
 * resumes at the first step not done, with the codes chosen the first time.
 */
export async function fulfilReferral(queued: Referral, deps: FulfilDeps, context: FulfilContext): Promise<FulfilResult> {
  const { ledger } = deps;
  const { owner, deadline } = context;
  const { eventId } = queued;
  const now = deps.now ?? Date.now;
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, { ...deps.retry, deadline });
  const checkpoint = async (step: Checkpoint) => deps.checkpoint?.(step, eventId);
  // Told on the write that parks it and on every retry that finds it waiting (a crash after that
  // write may have left it untold); then the qualifying facts, read after that write: true when one
  // noted meanwhile qualified it, and it is continued.
  const awaits = async (parked: LedgerRecord, referral: Referral): Promise<boolean> => {
    await announce(deps, retry, parked, 'awaiting_qualification', { qualifyBy: Number(parked.qualifyBy) });
    return qualifyFromFacts(ledger, referral, parked);
  };

  // Before begin, so the record holds the person who will be paid: a code's owner, not whatever
  // referrer email the event also named. Codes never change owner, so every retry resolves the same.
  const resolved = await resolveReferrer(queued, deps.referralCodes);
  const message = resolved.referral;
  if (resolved.ignoredReferrerEmail) deps.onIgnoredReferrerEmail?.(resolved.ignoredReferrerEmail, message.referrerEmail);

  const begun = await ledger.begin(message, {
    owner,
    // A few seconds past our deadline: the invocation is dead by then, so a successor may take over.
    leaseUntil: deadline + 5_000,
    codes: { referrer: deps.newCode(), redeemer: deps.newCode() },
    customerioEventId: deps.customerioEventId(eventId),
    rewardType: deps.rewardType ?? 'gift_card',
    rewardAmount: deps.rewardAmount,
  });
  if (begun.record) reportMismatch(message, begun.record, deps.onMismatch);
  if (begun.outcome === 'completed') {
    // Said again on a retry that finds it said (a crash may have come between): Customer.io drops the repeat.
    if (begun.record.customerioAt && !begun.record.revokeRequestedAt) await announce(deps, retry, begun.record, 'rewarded');
    return { outcome: 'already-completed' };
  }
  if (begun.outcome === 'rejected') return { outcome: 'already-rejected', reason: begun.record.rejectionReason ?? 'unknown' };
  if (begun.outcome === 'parked') {
    const parked = begun.record;
    if (parked.status === 'AWAITING' && (await awaits(parked, storedReferral(message, parked))))
      return fulfilReferral(queued, deps, context);
    if (parked.status === 'HELD') await announce(deps, retry, parked, 'held', { paysAfter: Number(parked.releaseAt) });
    return { outcome: 'already-parked', status: parked.status };
  }
  if (begun.outcome === 'busy') {
    // Back when the lease can be taken over, not sooner: a live holder finishes (this copy is then
    // acknowledged as a duplicate) or releases it, and a crashed one's lease has run out. Real time,
    // as the lease is: `now` may be a test's fixed clock.
    const leaseLeftMs = Number(begun.record?.leaseExpiresAt ?? 0) - Date.now();
    throw new RetryableError('another worker is fulfilling this referral', { retryAfterMs: Math.max(CONTENTION_RETRY_MS, leaseLeftMs) });
  }
  let record = begun.record;
  // From here on the ledger's copy is the referral: the people, the PostHog person and the reward
  // are the ones fixed at begin, whatever a later message (a reused uuid) or the config says now.
  const referral = storedReferral(message, record);
  const { rewardType, rewardAmount } = record;
  // begin writes both (if_not_exists): a record without them is a ledger we cannot trust to pay once.
  if (!rewardType || !rewardAmount)
    throw new PermanentError('ledger_incomplete', `ledger record ${eventId} has no reward type or amount after begin`);
  const reward = { rewardType, rewardAmount };
  await checkpoint('begun');

  // The last step of a referral also ends it, in the same ledger write (lastStep, lib/domain/machine.ts).
  const posthog = record.posthogAt ? undefined : deps.posthog;
  const posthogDue = posthog !== undefined;
  const end = async (outcome: 'fulfilled' | 'rejected', finish: FinalStatus, extra?: OutcomeDetails) => {
    const step = lastStep(record, posthogDue);
    if (step === 'own') record = await finishStep(ledger, eventId, owner, finish);
    if (step !== 'posthog' || !posthog) return;
    // Same referral, same outcome: the adapter derives the same uuid, and PostHog drops the repeat of a retried capture.
    await retry(() => captureOutcome(posthog, outcome, referral, reward, extra));
    record = await recordPostHog(ledger, eventId, owner, finish);
    await checkpoint('posthog');
  };

  // The reward fixed at begin, not the config of the moment: budgets and captures count what is paid.
  const gateContext = { ...deps, ...reward, owner, retry, now };
  let state = stateOf(record);
  if (state.name === 'RECEIVED') {
    // The verdict, reached once and stored in one write: the rules' (unless an earlier release
    // stored them apart), then the lifecycle's on an accepted referral. Refused by its signature (a
    // forged event is reported as one), a code we never issued or none where one is required, or the
    // static rules, a referral claims nothing; the per-person claims admit the same referral again,
    // so a rerun before the verdict is stored reaches the same one. One that will wait for its
    // qualifying event claims its referrer slot only once it has qualified (its qualifiedAt stored):
    // MAX_REWARDS_PER_REFERRER counts the referrals that qualify (lib/domain/claims.ts).
    const waits = waitsForQualification(deps.qualification, record);
    const { rules } = deps;
    const refusal = state.accepted
      ? record.qualifiedAt && rules
        ? await claimReferrerCap(referral, rules, ledger)
        : undefined
      : rules
        ? (vouchRefusal(referral, rules.referralSignatures) ??
          resolved.refusal ??
          staticRefusal(referral, rules) ??
          (await claimPerPersonRules(referral, rules, ledger, { slotOnQualifying: waits })))
        : resolved.refusal;
    // The redeemer's keys point at an accepted referral before its verdict is stored, so a person
    // event that finds it waiting (or, for a refund, paid) finds it by them (lib/domain/qualify.ts).
    if (!refusal && personEventsOn(deps.qualification) && !record.qualifiedAt) await takePersonKeys(ledger, referral, eventId);
    const verdict: Verdict = refusal
      ? { kind: 'reject', reason: refusal }
      : waits
        ? { kind: 'await', until: capturedAt(referral, record) + deps.qualification!.withinMs }
        : deps.lifecycle
          ? await lifecycleVerdict(referral, record, deps.lifecycle, gateContext)
          : { kind: 'pay' };
    record = await decide(ledger, eventId, owner, verdict, JSON.stringify(referral));
    await checkpoint('decided');
    if (verdict.kind === 'hold') {
      await announce(deps, retry, record, 'held', { paysAfter: verdict.until });
      return { outcome: 'held', releaseAt: verdict.until };
    }
    if (verdict.kind === 'review') return { outcome: 'review', reasons: verdict.reasons };
    if (verdict.kind === 'await')
      return (await awaits(record, referral)) ? fulfilReferral(queued, deps, context) : { outcome: 'awaiting', qualifyBy: verdict.until };
    state = stateOf(record);
  }
  if (state.name === 'REJECTED') {
    // After the verdict is stored, before the referral is final: see releaseClaims. One refused when
    // it qualified (the cap) also gives back the person keys it took when it began to wait.
    await releaseClaims(ledger, record);
    if (record.qualifiedAt) await releasePersonKeys(ledger, referral, eventId);
    await end('rejected', 'REJECTED', { reason: state.reason });
    return { outcome: 'rejected', reason: state.reason };
  }
  if (state.name === 'HELD' && deps.lifecycle) {
    // Taken up after a hold or an approval: leave the index first, so the releaser stops sending it.
    const taken = await takeUp(referral, record, ledger, deps.lifecycle, gateContext);
    if (taken.outcome === 'held') await announce(deps, retry, record, 'held', { paysAfter: taken.releaseAt });
    if (taken.outcome !== 'pay') return taken;
    record = taken.record;
  }

  // The issuer of the type the referral began with: another one would not see its lost-response rewards.
  const issuer = deps.issuers?.[rewardType] ?? (rewardType === (deps.rewardType ?? 'gift_card') ? deps.shopify : undefined);
  if (!issuer)
    throw new PermanentError('reward_type_unavailable', `referral began as ${rewardType}, and this worker has no ${rewardType} issuer`);
  // Each card step reads the record as it was before both started and returns only what it wrote
  // for its own role; nothing shared is mutated while the other step is in flight.
  const before = record;
  const issueCard = async (role: Role): Promise<CardWrite> => {
    if (before[`${role}CardId`]) return {};
    const write: CardWrite = {};
    const taken = `Shopify reports the ${role} code taken`;
    let code = before[`${role}Code`];
    for (let collisions = 0; ;) {
      // Chosen per attempt: while the reward does not exist its date may move, so a redrive days
      // later still issues it with the full validity. The note carries the date, so a reward that
      // an earlier attempt created (lost response) is recorded with the date it really has.
      let expiresOn: string | undefined;
      let sends = 0;
      const created = await retry(() => {
        sends++;
        expiresOn = deps.rewardExpiresDays ? expiryDate(now(), deps.rewardExpiresDays) : undefined;
        return issuer.createGiftCard({
          code,
          amount: reward.rewardAmount,
          note: giftCardNote(eventId, role, expiresOn),
          ...(expiresOn ? { expiresOn } : {}),
        });
      });
      let cardId = created.status === 'created' ? created.id : undefined;
      if (!cardId) {
        // TAKEN for a code we persisted: most likely our own earlier attempt succeeded and we never heard.
        const found = await retry(() => issuer.findGiftCardByCode(code));
        const ours = found.matches
          .map((match) => ({ match, note: parseGiftCardNote(match.note) }))
          .find(({ note }) => note?.eventId === eventId && note.role === role);
        if (ours) {
          cardId = ours.match.id;
          expiresOn = ours.note?.expiresOn;
        } else if (found.matches.length === 0 || !found.complete) {
          // Never treat "not found yet" or "not all seen" as a collision: a new code could pay this person twice.
          const why =
            found.matches.length === 0 ? 'but the card is not searchable yet' : 'and the look-up has more matches than it returned';
          throw new RetryableError(`${taken} ${why}`);
        }
      }
      if (cardId) {
        const written = await recordCard(ledger, eventId, owner, role, cardId, expiresOn);
        // Only this role's card fields: the rest of `written` may be the other step's stale copy.
        for (const field of ['CardId', 'CardAt', 'ExpiresOn'] as const) write[`${role}${field}`] = written[`${role}${field}`];
        await checkpoint(`card:${role}`);
        return write;
      }
      // Sent before: by an earlier call of this attempt (a retried create whose answer was lost, or
      // the issuer's own resend), or by an earlier attempt (the record's code). Its "not ours" may
      // be our card not yet searchable.
      if (created.status === 'taken') sends += (created.sends ?? 1) - 1;
      if (sends > 1 || (before.attempts > 1 && code === before[`${role}Code`])) {
        // Replaced only once `code` has answered "taken, not ours" for longer than the confirmation
        // window: the first sighting is recorded and the referral retried (SQS redelivers), so a card
        // our lost answer created has time to become searchable and be found as ours instead of paid again.
        const seenAt = before[`${role}TakenSeenCode`] === code ? before[`${role}TakenSeenAt`] : undefined;
        const windowMs = deps.collisionConfirmMs ?? DEFAULT_COLLISION_CONFIRM_MS;
        const seenForMs = seenAt === undefined ? 0 : now() - Date.parse(seenAt);
        if (seenAt === undefined || seenForMs < windowMs) {
          if (seenAt === undefined) await recordTakenSeen(ledger, eventId, owner, role, code);
          const message = `${taken} by another reward; confirming it is not ours (not yet searchable) before replacing it`;
          // Back when the window has passed, not before: earlier tries would only spend receives.
          throw new RetryableError(message, { retryAfterMs: windowMs - seenForMs });
        }
      }
      if (++collisions > MAX_CODE_COLLISIONS)
        throw new PermanentError('code_collisions', `${role} code collided ${collisions} times in a row`);
      const next = deps.newCode();
      const updated = await replaceCode(ledger, eventId, owner, role, code, next);
      write[`${role}Code`] = updated[`${role}Code`];
      code = next;
    }
  };

  // Side by side, both settled before deciding, so neither is abandoned between Shopify's answer and
  // its ledger write; the merge below only feeds the Customer.io step, which runs when both succeeded.
  const settled = await Promise.allSettled(ROLES.map(issueCard));
  const failures = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length > 0) throw failures.find((error) => error instanceof PermanentError) ?? failures[0];
  for (const result of settled) if (result.status === 'fulfilled') record = { ...record, ...result.value };

  if (!record.customerioAt) {
    await retry(() =>
      deps.customerio.sendFulfilment({
        eventId,
        name: deps.customerioEvent,
        // The redeemer, the person the rules judged: never the record's customerEmail,
        // which a record begun by the previous release may hold as a different PostHog person.
        recipient: referral.redeemerEmail,
        referrerEmail: referral.referrerEmail,
        redeemerEmail: referral.redeemerEmail,
        referrerCode: record.referrerCode,
        redeemerCode: record.redeemerCode,
        // Derived from the PostHog uuid: Customer.io drops a repeated id, so a resend never mails twice.
        id: record.customerioEventId,
        // Now, not the event's time: Customer.io ignores events older than 72 h for campaigns,
        // and a DLQ redrive days later must still mail both people.
        timestamp: Math.floor(now() / 1000),
      }),
    );
    record = await recordCustomerIo(ledger, eventId, owner, lastStep(record, posthogDue) === 'customerio' ? 'COMPLETED' : undefined);
    await checkpoint('customerio');
  }
  // After the fulfilment event was accepted (the codes travel only in it), and again by a retry.
  await announce(deps, retry, record, 'rewarded');

  if (record.status !== 'COMPLETED') await end('fulfilled', 'COMPLETED');
  await checkpoint('completed');
  return { outcome: 'completed' };
}

/**
 * The message's referral with the people and PostHog person the ledger fixed at begin. The
 * signature stays the message's, and is checked against these stored people (lib/domain/rules.ts),
 * the ones that would be paid, never against a later message's (a reused uuid). A signed code
 * vouches for its owner only, so the message's code is kept only when its owner is the stored
 * referrer: a message reusing the uuid of a referral begun for another referrer (a forged one that
 * stopped before deciding) is then checked against that referrer's email, and refused.
 */
function storedReferral(message: Referral, record: LedgerRecord): Referral {
  const codeIsTheReferrers =
    message.referralCode !== undefined && canonicalEmail(message.referrerEmail) === canonicalEmail(record.referrerEmail);
  return {
    ...message,
    referralCode: codeIsTheReferrers ? message.referralCode : undefined,
    referrerEmail: record.referrerEmail,
    redeemerEmail: record.redeemerEmail,
    customerEmail: record.customerEmail,
    // Records begun before the distinct id was stored: the message's (the old behaviour).
    distinctId: record.distinctId ?? message.distinctId,
  };
}

function reportMismatch(message: Referral, record: LedgerRecord, onMismatch: FulfilDeps['onMismatch']): void {
  const mismatch = MISMATCH_FIELDS.flatMap((field) => {
    const ours = field === 'distinctId' ? posthogDistinctId(message) : message[field];
    const stored = record[field];
    // A field the record lacks (begun before it was stored) is not a difference.
    return stored !== undefined && stored !== ours ? [{ field, message: ours, ledger: stored }] : [];
  });
  if (mismatch.length > 0) onMismatch?.(mismatch);
}

/** The UTC date `days` after `now`, as Shopify's `expiresOn` takes it. */
export function expiryDate(now: number, days: number): string {
  return new Date(now + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * Written on every card so a card found by code can be recognised as this referral's, for this
 * role, and with the expiry it was created with (in the same call as the expiry itself).
 */
export function giftCardNote(eventId: string, role: Role, expiresOn?: string): string {
  return `referral-rewards ${role} reward for PostHog event ${eventId}${expiresOn ? `, expires ${expiresOn}` : ''}`;
}

const NOTE_PATTERN = /^referral-rewards (referrer|redeemer) reward for PostHog event ([^\s,]+)(?:, expires (\d{4}-\d{2}-\d{2}))?$/;

/** The referral, role and expiry a card's note names (giftCardNote read back), or undefined for any other note. */
export function parseGiftCardNote(note: string | null | undefined): { role: Role; eventId: string; expiresOn?: string } | undefined {
  const match = NOTE_PATTERN.exec(note ?? '');
  if (!match) return undefined;
  return { role: match[1] as Role, eventId: match[2], ...(match[3] ? { expiresOn: match[3] } : {}) };
}

/** What one card step wrote to the ledger: its own role's code (when replaced), card id, time and expiry. */
type CardWrite = Partial<Pick<LedgerRecord, `${Role}Code` | `${Role}CardId` | `${Role}CardAt` | `${Role}ExpiresOn`>>;
