import type { BeginInput, BeginResult, Change, LedgerPort, LedgerRecord, RewardType, Role } from './ledger-port';
import { applyBegin, applyChange, ROLES } from './ledger-port';
import { maskCode, maskEmail } from '../infra/mask';
import type { Referral } from './referral';
import type { EventSender, FulfilDeps, FulfilmentMessage, OutcomeCapture, OutcomeTracker, RewardIssuer } from './rewards';
import { fulfilReferral, parseGiftCardNote } from './rewards';

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

  const rehearsal = new RehearsalLedger(stored);
  const seen = new Recorders(rehearsal, stored);
  const deps: FulfilDeps = {
    ledger: rehearsal,
    shopify: seen.issuer(settings.rewardType ?? 'gift_card'),
    issuers: { gift_card: seen.issuer('gift_card'), discount_code: seen.issuer('discount_code') },
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
  steps.push(...seen.steps());
  steps.push(`mark the referral ${refused ? 'REJECTED' : 'COMPLETED'} in the ledger`);

  const plan: DryRunPlan = { eventId, outcome: refused ? 'would-refuse' : 'would-fulfil', ledgerStatus, steps };
  log.warn('DRY RUN: nothing done; a real run would', {
    dryRun: true,
    ledgerStatus,
    attempts: stored?.attempts ?? 0,
    steps,
    note: 'NOT paid: the message is parked in the DLQ (reason dry_run); redrive it once DRY_RUN is off to pay it',
  });
  return plan;
}

/** What the run asked of Shopify, Customer.io and PostHog, answered as a success and written up masked. */
class Recorders {
  private readonly cards: Partial<Record<Role, string>> = {};
  private readonly events: string[] = [];
  private readonly captures: string[] = [];

  public constructor(
    private readonly rehearsal: RehearsalLedger,
    private readonly stored: LedgerRecord | undefined,
  ) {}

  public issuer(type: RewardType): RewardIssuer {
    const kind = type === 'discount_code' ? 'Shopify discount code' : 'Shopify gift card';
    return {
      createGiftCard: async (input) => {
        const role = parseGiftCardNote(input.note)?.role ?? 'redeemer';
        const amount = input.amount === UNSET_AMOUNT ? '' : `${input.amount} `;
        const email = this.rehearsal.record?.[`${role}Email`] ?? '';
        const code =
          input.code === this.stored?.[`${role}Code`] ? `the code already chosen (${maskCode(input.code)})` : 'a newly chosen code';
        this.cards[role] = `create a ${amount}${kind} for the ${role} ${maskEmail(email)} with ${code}`;
        return { status: 'created', id: `dry-run:${role}` };
      },
      findGiftCardByCode: async () => ({ matches: [], complete: true }),
    };
  }

  public readonly customerio: EventSender = {
    sendFulfilment: async (message: FulfilmentMessage) => {
      this.events.push(
        `send the Customer.io event${message.name ? ` "${message.name}"` : ''} for ${maskEmail(message.recipient)} with both codes`,
      );
    },
  };

  public readonly posthog: OutcomeTracker = {
    track: async (capture: OutcomeCapture) => {
      this.captures.push(`capture "referral reward ${capture.outcome}" in PostHog`);
    },
  };

  /** In the order a real run takes them: the cards (side by side, listed referrer first), the event, the capture. */
  public steps(): string[] {
    return [...ROLES.flatMap((role) => this.cards[role] ?? []), ...this.events, ...this.captures];
  }
}

/**
 * One referral's record in memory, for the rehearsal alone: begin takes it up as the real ledger
 * would (settled and parked records are reported, not taken), each step changes only this copy,
 * and no lease is checked (nothing else writes it). Per-person claims are granted: judging them
 * needs other referrals' items, and taking one would be a write.
 */
class RehearsalLedger implements LedgerPort {
  public record?: LedgerRecord;

  public constructor(stored: LedgerRecord | undefined) {
    this.record = stored ? { ...stored } : undefined;
  }

  public async get(eventId: string): Promise<LedgerRecord | undefined> {
    return this.record?.eventId === eventId ? { ...this.record } : undefined;
  }

  public async begin(referral: Referral, input: BeginInput): Promise<BeginResult> {
    const existing = this.record;
    const now = Date.now();
    if (existing?.status === 'COMPLETED') return { outcome: 'completed', record: { ...existing } };
    if (existing?.status === 'REJECTED') return { outcome: 'rejected', record: { ...existing } };
    if (
      existing &&
      (existing.status === 'REVIEW' ||
        existing.status === 'REVOKED' ||
        existing.status === 'AWAITING' ||
        existing.status === 'NOT_QUALIFIED' ||
        (existing.status === 'HELD' && !(Number(existing.releaseAt) <= now)))
    ) {
      return { outcome: 'parked', record: { ...existing, status: existing.status } };
    }
    // A rehearsal copy: the lease fields it carries are never checked (nothing else writes it).
    this.record = applyBegin(existing, referral, input, now);
    return { outcome: 'acquired', record: { ...this.record } };
  }

  /** A step changes only this copy: no lease or condition is checked (nothing else writes it). */
  public async write(_eventId: string, _owner: string, change: Change): Promise<LedgerRecord> {
    if (!this.record) throw new Error('dry run: a step before begin');
    this.record = applyChange(this.record, change, Date.now());
    return { ...this.record };
  }

  public async move(): Promise<undefined> {
    return undefined;
  }

  public async fail(): Promise<boolean> {
    return false;
  }

  public async count(): Promise<boolean> {
    return true;
  }

  public async uncount(): Promise<boolean> {
    return false;
  }

  public async holders(): Promise<string[]> {
    return [];
  }

  public async spent(): Promise<{ cents: number; referrals: number }> {
    return { cents: 0, referrals: 0 };
  }

  public async velocity(): Promise<number> {
    return 0;
  }

  /** Nothing is noted, and nothing was: a rehearsed referral waits rather than reading another's event. */
  public async noteQualifying(): Promise<void> {}

  public async qualifying(): Promise<undefined> {
    return undefined;
  }

  public async markPersonEvent(): Promise<void> {}

  public async personEventMarked(): Promise<boolean> {
    return false;
  }
}
