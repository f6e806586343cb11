import { ROLES, type LedgerPort, type Role } from './ledger-port';
import { maskCode, maskEmail } from '../infra/mask';
import type { Referral } from './referral';
import type { FulfilDeps } from './rewards';
import { resolveReferrer } from './referral-codes';
import { staticRefusal, vouchRefusal } from './rules';

/** The slice of a Powertools logger the rehearsal writes to. */
export interface DryRunLog {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

/** What a real run would do next for one referral, worked out from the ledger alone. */
export interface DryRunPlan {
  eventId: string;
  /** 'already-*': the referral is settled; a real run would acknowledge it as a duplicate and do nothing. */
  outcome: 'would-fulfil' | 'would-refuse' | 'already-completed' | 'already-rejected';
  /** The ledger's status now, or 'NEW' when it has no record of this referral. */
  ledgerStatus: string;
  /** Steps a real run would still take, in order, in plain words with masked emails and codes. */
  steps: string[];
}

/**
 * The settings the plan mentions. Only plain values are read (and whether an outcome tracker is
 * configured): the type leaves out the Shopify and Customer.io clients, so nothing here can call them.
 */
export type DryRunSettings = Partial<Pick<FulfilDeps, 'rewardAmount' | 'customerioEvent' | 'rewardType' | 'rules' | 'posthog' | 'referralCodes'>>;

/**
 * DRY_RUN=true: work out and log what fulfilling this referral would do, without doing it.
 *
 * It READS the ledger and nothing else: no Shopify, no Customer.io, no PostHog, and above all
 * no ledger write. A rehearsal that marked a referral (or even one step of it) done would make
 * the next real run skip paying it; one that chose codes or claimed a redeemer would fix them for
 * the real run. The caller parks the message in the DLQ afterwards (reason dry_run), to be
 * redriven and paid once DRY_RUN is off.
 */
export async function dryRunFulfil(
  queued: Referral,
  ledger: Pick<LedgerPort, 'get'>,
  log: DryRunLog,
  settings: DryRunSettings = {},
): Promise<DryRunPlan> {
  const { eventId } = queued;
  const record = await ledger.get(eventId);
  // The code resolved as the real run would (reads only): its owner is who would be paid.
  const resolved = await resolveReferrer(queued, settings.referralCodes);
  const referral = resolved.referral;
  const status = record?.status;

  if (status === 'COMPLETED' || status === 'REJECTED') {
    const plan: DryRunPlan = { eventId, outcome: status === 'COMPLETED' ? 'already-completed' : 'already-rejected', ledgerStatus: status, steps: [] };
    log.info(`DRY RUN: referral already ${status.toLowerCase()}; a real run would acknowledge it as a duplicate`, { dryRun: true });
    return plan;
  }

  const steps: string[] = [];
  const capture = (event: string): void => {
    if (settings.posthog && !record?.posthogAt) steps.push(`capture "${event}" in PostHog`);
  };
  let refusal: string | undefined = record?.decision === 'REJECTED' ? (record.rejectionReason ?? 'unknown') : undefined;
  if (!record?.decision) refusal = (settings.rules ? vouchRefusal(referral, settings.rules.referralSignatures) : undefined) ?? resolved.refusal;
  if (!record?.decision && !refusal && settings.rules) {
    refusal = staticRefusal(referral, settings.rules);
    if (!refusal) {
      steps.push(
        'check the per-person rules in the ledger (one reward per redeemer' +
          (settings.rules.maxRewardsPerReferrer > 0 ? `, at most ${settings.rules.maxRewardsPerReferrer} per referrer` : '') +
          '): not checked in a dry run, a refusal there would stop here',
      );
    }
  }

  if (refusal) {
    steps.push(`refuse the referral (${refusal}): no reward, no Customer.io event`);
    capture('referral reward rejected');
    steps.push('mark the referral REJECTED in the ledger');
  } else {
    const amount = settings.rewardAmount ? `${settings.rewardAmount} ` : '';
    const kind = settings.rewardType === 'discount_code' ? 'Shopify discount code' : 'Shopify gift card';
    const email = { referrer: referral.referrerEmail, redeemer: referral.redeemerEmail } satisfies Record<Role, string>;
    for (const role of ROLES) {
      if (record?.[`${role}CardId`]) continue;
      const code = record?.[`${role}Code`];
      steps.push(
        `create a ${amount}${kind} for the ${role} ${maskEmail(email[role])} with ` +
          (code ? `the code already chosen (${maskCode(code)})` : 'a newly chosen code'),
      );
    }
    if (!record?.customerioAt) {
      steps.push(
        `send the Customer.io event${settings.customerioEvent ? ` "${settings.customerioEvent}"` : ''} for ` +
          // The redeemer, as the real run sends it (#10, defect 3), whatever a queued customerEmail says.
          `${maskEmail(record?.redeemerEmail ?? referral.redeemerEmail)} with both codes`,
      );
    }
    capture('referral reward fulfilled');
    steps.push('mark the referral COMPLETED in the ledger');
  }

  const plan: DryRunPlan = { eventId, outcome: refusal ? 'would-refuse' : 'would-fulfil', ledgerStatus: status ?? 'NEW', steps };
  log.warn('DRY RUN: nothing done; a real run would', {
    dryRun: true,
    ledgerStatus: plan.ledgerStatus,
    attempts: record?.attempts ?? 0,
    steps,
    note: 'NOT paid: the message is parked in the DLQ (reason dry_run); redrive it once DRY_RUN is off to pay it',
  });
  return plan;
}
