import { CONTENTION_RETRY_MS, RetryableError } from './errors';
import { canonicalEmail } from './identity';
import type { Counter, LedgerPort, LedgerRecord, Role } from './ledger-port';
import type { ProgramRules, RefusalReason } from './rules';

/** The counters and reads the claims use. */
type ClaimsPort = Pick<LedgerPort, 'count' | 'uncount' | 'holders' | 'get'>;
/** The referral whose claims they are. */
type Claimant = Pick<LedgerRecord, 'eventId' | 'referrerEmail' | 'redeemerEmail'>;

/**
 * The per-person program rules as claims in the ledger: one item per redeemer (which referral
 * rewards them) and one per referrer (which referrals use its `MAX_REWARDS_PER_REFERRER` slots).
 *
 * Invariant: a claim refuses another referral FOR GOOD only when the referral holding it is itself
 * eligible (decided ACCEPTED, or COMPLETED). So a referral that fails a later rule can never have
 * blocked one that passes:
 * - holder undecided (IN_PROGRESS, or FAILED / dead-lettered before deciding): the outcome is not
 *   known yet, so we throw RetryableError and SQS brings this referral back in seconds
 *   (CONTENTION_RETRY_MS: a holder usually decides within one). We never take a
 *   claim from an undecided holder, even a FAILED one: it may be redriven at the same moment and
 *   re-take its own claim, and two referrals each believing they hold the redeemer would pay twice.
 *   A FAILED holder is redriven with the DLQ (as is this referral, if it waits past its receives).
 * - holder refused (decided REJECTED, which is final: begin never re-runs a rejected referral's
 *   rules; or NOT_QUALIFIED, final too): its claim is a leftover of a crash between its decision
 *   and its release; we take it over.
 * Claims are taken in one order, redeemer then referrer slot: a slot holder has passed every claim,
 * so it is never itself waiting on one, and waits cannot form a cycle.
 *
 * Pay on value (QUALIFY_EVENT, lib/domain/qualify.ts): a referral that will wait takes only its
 * redeemer claim (`slotOnQualifying`), and its referrer slot when it qualifies (claimReferrerCap,
 * before the lifecycle's verdict): the cap limits rewards, so it counts the referrals that qualify,
 * first qualified first served, and a friend who never pays uses up no slot. It is refused at once
 * when eligible referrals already hold every slot (a look, no claim), rather than holding its
 * redeemer from another referrer meanwhile for a slot it would be refused then. The order holds: the
 * qualified referral already holds its redeemer claim, and its stored ACCEPTED decision makes it an
 * eligible holder of that claim (never one others wait on); once it holds a slot its verdict is the
 * lifecycle's (hold, review, pay), never a refusal, so it is eligible as a slot holder too.
 */
export async function claimPerPersonRules(
  referral: Claimant,
  rules: ProgramRules,
  ledger: ClaimsPort,
  options: { slotOnQualifying?: boolean } = {},
): Promise<RefusalReason | undefined> {
  const redeemer = { kind: 'redeemer' as const, person: canonicalEmail(referral.redeemerEmail) };
  if (!(await claim(ledger, redeemer, referral.eventId, 1))) return 'redeemer_already_rewarded';
  if (!options.slotOnQualifying) return claimReferrerCap(referral, rules, ledger);
  const cap = rules.maxRewardsPerReferrer;
  if (cap <= 0) return undefined;
  const holders = await ledger.holders({ kind: 'referrer', person: canonicalEmail(referral.referrerEmail) });
  if (holders.length < cap) return undefined;
  const eligible = (await statesOf(ledger, holders)).filter(({ state }) => state === 'eligible');
  return eligible.length >= cap ? 'referrer_cap_reached' : undefined;
}

/**
 * The referrer's slot under MAX_REWARDS_PER_REFERRER alone: with the redeemer claim for a referral
 * that waits for nothing, on its own for a referral that has just qualified. Idempotent per
 * referral (the ledger counts a referral once), so a retry after a crash between this claim and
 * the verdict finds its slot still held.
 */
export async function claimReferrerCap(referral: Claimant, rules: ProgramRules, ledger: ClaimsPort): Promise<RefusalReason | undefined> {
  const cap = rules.maxRewardsPerReferrer;
  const referrer = { kind: 'referrer' as const, person: canonicalEmail(referral.referrerEmail) };
  if (cap > 0 && !(await claim(ledger, referrer, referral.eventId, cap))) return 'referrer_cap_reached';
  return undefined;
}

/**
 * A refused referral gives back every claim it took. Called only once its REJECTED decision is
 * stored: released earlier, a takeover of this referral still running its rules could count on a
 * claim already given away. Idempotent (each release removes only this referral's own claim), so
 * a crash before the refusal is finished repeats it; a crash that leaves a claim behind anyway is
 * taken over by the next claimant (holder refused, above).
 */
export async function releaseClaims(ledger: ClaimsPort, record: Claimant): Promise<void> {
  await ledger.uncount({ kind: 'redeemer', person: canonicalEmail(record.redeemerEmail) }, record.eventId);
  await ledger.uncount({ kind: 'referrer', person: canonicalEmail(record.referrerEmail) }, record.eventId);
}

/** Rounds of claim, look at the holders, clear refused ones' leftovers; more means heavy churn: come back later. */
const MAX_ROUNDS = 3;

/** Why a contended claim is retried: a holder not yet decided, or claims changing hands every round. */
const CONTENDED = {
  redeemer: { held: 'the redeemer is claimed', churn: 'the redeemer claim kept changing hands' },
  referrer: { held: "the referrer's last slot is held", churn: "the referrer's slots kept changing hands" },
};
const contended = (why: string) => new RetryableError(`rules: ${why}; retry later`, { retryAfterMs: CONTENTION_RETRY_MS });

/** Claims the redeemer (`cap` 1) or one of the referrer's `cap` slots: false when eligible referrals hold them all. */
async function claim(ledger: ClaimsPort, counter: Extract<Counter, { kind: Role }>, eventId: string, cap: number): Promise<boolean> {
  let stale: string | undefined;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (await ledger.count(counter, eventId, counter.kind === 'redeemer' ? { takeOver: stale } : { limit: cap })) return true;
    const holders = await ledger.holders(counter);
    const states = await statesOf(ledger, holders);
    const refused = states.filter(({ state }) => state === 'refused').map(({ holder }) => holder);
    if (refused.length > 0) {
      // Leftovers of refused referrals: the redeemer's is taken over by the next claim itself (only
      // while it is still that referral's), a referrer's slots are given back; then claim again.
      if (counter.kind === 'redeemer') stale = refused[0];
      else for (const holder of refused) await ledger.uncount(counter, holder);
      continue;
    }
    const undecided = states.find(({ state }) => state === 'undecided');
    if (undecided) throw contended(`${CONTENDED[counter.kind].held} by referral ${undecided.holder}, not yet decided`);
    if (holders.length >= cap) return false;
    // Fewer holders than the cap: a claim was given back between ours and our look.
  }
  throw contended(CONTENDED[counter.kind].churn);
}

async function statesOf(ledger: ClaimsPort, holders: string[]): Promise<{ holder: string; state: HolderState }[]> {
  return Promise.all(holders.map(async (holder) => ({ holder, state: holderState(await ledger.get(holder)) })));
}

type HolderState = 'eligible' | 'refused' | 'undecided';

function holderState(record: LedgerRecord | undefined): HolderState {
  // Before the decision: NOT_QUALIFIED was accepted, but it is final and paid nothing (holder refused, above).
  if (record?.status === 'NOT_QUALIFIED') return 'refused';
  if (record?.decision === 'ACCEPTED' || record?.status === 'COMPLETED') return 'eligible';
  if (record?.decision === 'REJECTED' || record?.status === 'REJECTED') return 'refused';
  // No record (cannot happen: begin writes it before any claim) or no decision yet.
  return 'undecided';
}
