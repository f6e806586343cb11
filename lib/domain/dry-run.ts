import { applyBegin, applyChange, closedOutcome, ROLES, type LedgerPort, type LedgerRecord, type Role } from './ledger-port';
import { maskCode, maskEmail } from '../infra/mask';
import type { EventSender, OutcomeTracker } from './notify-ports';
import type { Referral } from './referral';
import { fulfilReferral, parseGiftCardNote, type FulfilDeps, type RewardIssuer } from './rewards';

/** The slice of the logger the rehearsal writes to. */
export interface DryRunLog {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

/** What a real run would do next for one referral: what fulfilReferral did against recorders. */
export interface DryRunPlan {
  eventId: string;
  /** 'already-*': the referral is settled or parked; a real run would acknowledge it and do nothing. */
  outcome: 'would-fulfil' | 'would-refuse' | 'already-completed' | 'already-rejected' | 'already-parked';
  /** The ledger's status now, or 'NEW' when it has no record of this referral. */
  ledgerStatus: string;
  /** Steps a real run would still take, in order, in plain words with masked emails and codes. */
  steps: string[];
}

/**
 * The settings the rehearsal runs with. Only plain values are read (and whether an outcome tracker
 * is configured): the type leaves out the ledger and the Shopify and Customer.io clients, so
 * nothing here can call them; the run gets recorders in their place.
 */
export type DryRunSettings = Partial<
  Pick<
    FulfilDeps,
    | 'rewardAmount'
    | 'customerioEvent'
    | 'rewardType'
    | 'rules'
    | 'posthog'
    | 'lifecycle'
    | 'rewardExpiresDays'
    | 'referralCodes'
    | 'qualification'
  >
>;

/** Stands in for an amount the settings did not give: the plan then names no amount. */
const UNSET_AMOUNT = '?';

/**
 * DRY_RUN=true: run the real fulfilReferral for this referral, with recorders in place of
 * Shopify, Customer.io and PostHog and an in-memory ledger seeded from one read of the real
 * record, and log what the recorders saw as the plan.
 *
 * It READS the ledger and nothing else: no Shopify, no Customer.io, no PostHog, and above all
 * no ledger write. A rehearsal that marked a referral (or even one step of it) done would make
 * the next real run skip paying it; one that chose codes or claimed a redeemer would fix them for
 * the real run. The caller parks the message in the DLQ afterwards (reason dry_run), to be
 * redriven and paid once DRY_RUN is off.
 *
 * Two checks need other referrals' items or the lifecycle's counters, so the rehearsal does not
 * make them and says so in the plan: the per-person rules (claims, granted here) and the hold,
 * review guards and budgets (the run has no lifecycle, so it pays at once).
 */
export async function dryRunFulfil(
  referral: Referral,
  ledger: Pick<LedgerPort, 'get'>,
  log: DryRunLog,
  settings: DryRunSettings = {},
): Promise<DryRunPlan> {
  const { eventId } = referral;
  const stored = await ledger.get(eventId);
  const ledgerStatus = stored?.status ?? 'NEW';

  const rehearsal = rehearsalLedger(stored);
  const seen = recorders(rehearsal, stored);
  const issuers = { gift_card: seen.issuer('gift card'), discount_code: seen.issuer('discount code') };
  const deps: FulfilDeps = {
    ledger: rehearsal,
    shopify: issuers[settings.rewardType ?? 'gift_card'],
    issuers,
    customerio: seen.customerio,
    posthog: settings.posthog ? seen.posthog : undefined,
    rewardAmount: settings.rewardAmount ?? UNSET_AMOUNT,
    rewardType: settings.rewardType,
    rewardExpiresDays: settings.rewardExpiresDays,
    customerioEvent: settings.customerioEvent ?? '',
    rules: settings.rules,
    // Reads only (the code's items): the run resolves a referral code to its owner as a real one does.
    referralCodes: settings.referralCodes,
    // Never shown (the plan says "a newly chosen code") and never kept.
    newCode: () => 'DRYRUNCODE',
    customerioEventId: () => 'dry-run',
  };
  const result = await fulfilReferral(referral, deps, { owner: 'dry-run', deadline: Date.now() + 60_000 });

  if (result.outcome === 'already-completed' || result.outcome === 'already-rejected' || result.outcome === 'already-parked') {
    const why =
      result.outcome === 'already-parked'
        ? `parked (${ledgerStatus}), left to the hold or the operator`
        : `already ${ledgerStatus.toLowerCase()}`;
    log.info(`DRY RUN: referral ${why}; a real run would acknowledge it and do nothing`, { dryRun: true });
    return { eventId, outcome: result.outcome, ledgerStatus, steps: [] };
  }

  const steps: string[] = [];
  const refused = result.outcome === 'rejected' ? result.reason : undefined;
  if (refused) {
    steps.push(`refuse the referral (${refused}): no reward, no Customer.io event`);
  } else {
    if (settings.rules && !stored?.decision) {
      steps.push(
        'check the per-person rules in the ledger (one reward per redeemer' +
          (settings.rules.maxRewardsPerReferrer > 0 ? `, at most ${settings.rules.maxRewardsPerReferrer} per referrer` : '') +
          '): not checked in a dry run, a refusal there would stop here',
      );
    }
    if (settings.qualification?.qualifyEvent && !stored?.qualifiedAt && !stored?.gatePassedAt) {
      steps.push(
        `wait for the redeemer's "${settings.qualification.qualifyEvent}" (QUALIFY_EVENT) before anything below: not rehearsed, nothing is issued until it arrives`,
      );
    }
    if (settings.lifecycle && !stored?.gatePassedAt) {
      steps.push(
        'apply the hold, review guards and budgets: not checked in a dry run, they may hold the referral or send it to review instead',
      );
    }
  }
  steps.push(...seen.steps(), `mark the referral ${refused ? 'REJECTED' : 'COMPLETED'} in the ledger`);
  log.warn('DRY RUN: nothing done; a real run would', {
    dryRun: true,
    ledgerStatus,
    attempts: stored?.attempts ?? 0,
    steps,
    note: 'NOT paid: the message is parked in the DLQ (reason dry_run); redrive it once DRY_RUN is off to pay it',
  });
  return { eventId, outcome: refused ? 'would-refuse' : 'would-fulfil', ledgerStatus, steps };
}

/** What the run asked of Shopify, Customer.io and PostHog, answered as a success and written up masked. */
function recorders(rehearsal: Rehearsal, stored: LedgerRecord | undefined) {
  const cards: Partial<Record<Role, string>> = {};
  const events: string[] = [];
  const captures: string[] = [];
  const issuer = (kind: string): RewardIssuer => ({
    createGiftCard: async (input) => {
      const role = parseGiftCardNote(input.note)?.role ?? 'redeemer';
      const amount = input.amount === UNSET_AMOUNT ? '' : `${input.amount} `;
      const email = rehearsal.record?.[`${role}Email`] ?? '';
      const code = input.code === stored?.[`${role}Code`] ? `the code already chosen (${maskCode(input.code)})` : 'a newly chosen code';
      cards[role] = `create a ${amount}Shopify ${kind} for the ${role} ${maskEmail(email)} with ${code}`;
      return { status: 'created', id: `dry-run:${role}` };
    },
    findGiftCardByCode: async () => ({ matches: [], complete: true }),
  });
  const customerio: EventSender = {
    sendFulfilment: async (message) => {
      events.push(
        `send the Customer.io event${message.name ? ` "${message.name}"` : ''} for ${maskEmail(message.recipient)} with both codes`,
      );
    },
  };
  const posthog: OutcomeTracker = {
    track: async (capture) => {
      captures.push(`capture "referral reward ${capture.outcome}" in PostHog`);
    },
  };
  /** In the order a real run takes them: the cards (side by side, listed referrer first), the event, the capture. */
  const steps = (): string[] => [...ROLES.flatMap((role) => cards[role] ?? []), ...events, ...captures];
  return { issuer, customerio, posthog, steps };
}

type Rehearsal = LedgerPort & { record?: LedgerRecord };

const always =
  <T>(answer: T) =>
  async (): Promise<T> =>
    answer;

/**
 * One referral's record in memory, for the rehearsal alone: begin takes it up as the real ledger
 * would (settled and parked records are reported, not taken), each step changes only this copy,
 * and no lease or condition is checked (nothing else writes it). Per-person claims are granted:
 * judging them needs other referrals' items, and taking one would be a write. Nothing is noted,
 * and nothing was: a rehearsed referral waits rather than reading another's event.
 */
function rehearsalLedger(stored: LedgerRecord | undefined): Rehearsal {
  const ledger: Rehearsal = {
    record: stored ? { ...stored } : undefined,
    get: async (eventId) => (ledger.record?.eventId === eventId ? { ...ledger.record } : undefined),
    begin: async (referral, input) => {
      const now = Date.now();
      const closed = ledger.record && closedOutcome({ ...ledger.record }, now);
      if (closed) return closed;
      ledger.record = applyBegin(ledger.record, referral, input, now);
      return { outcome: 'acquired', record: { ...ledger.record } };
    },
    write: async (_eventId, _owner, change) => {
      if (!ledger.record) throw new Error('dry run: a step before begin');
      ledger.record = applyChange(ledger.record, change, Date.now());
      return { ...ledger.record };
    },
    move: always(undefined),
    fail: always(false),
    count: always(true),
    uncount: always(false),
    holders: always([]),
    spent: always({ cents: 0, referrals: 0 }),
    velocity: always(0),
    noteQualifying: always(undefined),
    qualifying: always(undefined),
    markPersonEvent: always(undefined),
    personEventMarked: always(false),
  };
  return ledger;
}
