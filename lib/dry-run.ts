import type { Ledger, Role } from './ledger';
import { ROLES } from './ledger';
import { maskCode, maskEmail } from './mask';
import type { Referral } from './referral';

/** The slice of a Powertools logger the rehearsal writes to. */
export interface DryRunLog {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

/** What a real run would do next for one referral, worked out from the ledger alone. */
export interface DryRunPlan {
  eventId: string;
  /** 'already-*': the referral is settled; a real run would acknowledge it as a duplicate and do nothing. */
  outcome: 'would-fulfil' | 'already-completed' | 'already-rejected';
  /** The ledger's status now, or 'NEW' when it has no record of this referral. */
  ledgerStatus: string;
  /** Steps a real run would still take, in order, in plain words with masked emails and codes. */
  steps: string[];
}

export interface DryRunSettings {
  rewardAmount?: string;
  customerioEvent?: string;
}

/**
 * DRY_RUN=true: work out and log what fulfilling this referral would do, without doing it.
 *
 * It READS the ledger and nothing else: no Shopify, no Customer.io, and above all no ledger
 * write. A rehearsal that marked a referral (or even one step of it) done would make the next
 * real run skip paying it; one that chose codes would fix them for the real run. The caller
 * acknowledges the message afterwards: it was a rehearsal.
 */
export async function dryRunFulfil(
  referral: Referral,
  ledger: Pick<Ledger, 'get'>,
  log: DryRunLog,
  settings: DryRunSettings = {},
): Promise<DryRunPlan> {
  const { eventId } = referral;
  const record = await ledger.get(eventId);
  const amount = settings.rewardAmount ? `${settings.rewardAmount} ` : '';
  const email = { referrer: referral.referrerEmail, redeemer: referral.redeemerEmail } satisfies Record<Role, string>;

  // Compared as strings: ledgers with program rules also have a final 'REJECTED'.
  const status = record?.status as string | undefined;
  if (status === 'REJECTED') {
    log.info('DRY RUN: referral already refused by the program rules; a real run would acknowledge it', { dryRun: true });
    return { eventId, outcome: 'already-rejected', ledgerStatus: 'REJECTED', steps: [] };
  }
  if (record && status === 'COMPLETED') {
    const plan: DryRunPlan = { eventId, outcome: 'already-completed', ledgerStatus: 'COMPLETED', steps: [] };
    log.info('DRY RUN: referral already fulfilled; a real run would acknowledge it as a duplicate', {
      dryRun: true,
      completedAt: record.completedAt,
    });
    return plan;
  }

  const steps: string[] = [];
  for (const role of ROLES) {
    if (record?.[`${role}CardId`]) continue;
    const code = record?.[`${role}Code`];
    steps.push(
      `create a ${amount}Shopify gift card for the ${role} ${maskEmail(email[role])} with ` +
        (code ? `the code already chosen (${maskCode(code)})` : 'a newly chosen code'),
    );
  }
  if (!record?.customerioAt) {
    steps.push(
      `send the Customer.io event${settings.customerioEvent ? ` "${settings.customerioEvent}"` : ''} for ` +
        `${maskEmail(referral.customerEmail)} with both codes`,
    );
  }
  steps.push('mark the referral COMPLETED in the ledger');

  const plan: DryRunPlan = { eventId, outcome: 'would-fulfil', ledgerStatus: status ?? 'NEW', steps };
  log.warn('DRY RUN: nothing done; a real run would', {
    dryRun: true,
    ledgerStatus: plan.ledgerStatus,
    attempts: record?.attempts ?? 0,
    steps,
    note: 'message acknowledged without paying: send the event again (or re-drive it) with DRY_RUN=false to pay it',
  });
  return plan;
}
