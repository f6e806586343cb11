/** The soak's report: its figures, and the markdown table `npm run soak -- --write-docs` puts in docs/RELIABILITY.md. */
import type { Checkpoint } from '../lib/domain/rewards';
import type { SoakCustomerIoFault, SoakShopifyFault } from './faults';
import { pct, sum } from './harness';
import { lifecycleRows, type LifecycleReport } from './lifecycle-count';
import { qualificationRows, type QualifyReport } from './qualify';
import { SEQUENCE_CASES, type SequenceReport } from './sequences';

export interface ReferralProblem {
  eventId: string;
  problem: string;
  /** What happened to it, in order (ms since the start). */
  trace: string[];
}

export interface SoakReport {
  seed: number;
  ok: boolean;
  durationMs: number;
  phases: Record<'post' | 'settle' | 'late' | 'redrive' | 'check', number>;
  settings: {
    duplicateRate: number;
    faultRate: number;
    crashRate: number;
    hardCrashShare: number;
    pollers: number;
    clientTimeoutMs: number;
    visibilityTimeoutSeconds: number;
    workerTimeoutMs: number;
    maxReceiveCount: number;
    referrerCap: number;
  };
  /** Distinct referral events posted (valid webhooks). */
  events: number;
  /** Of those, how many the rules must refuse, by the planted case, and how many must be rewarded. */
  planted: { selfReferrals: number; repeatRedeemerPairs: number; cappedReferrerReferrals: number };
  expectedRewarded: number;
  /** Webhook deliveries of the referrals, duplicates included. */
  deliveries: number;
  /** Deliveries beyond the first. */
  duplicates: number;
  /** Referrals delivered more than once. */
  duplicatedEvents: number;
  duplicatesBy: { burst: number; spread: number; afterCompletion: number };
  /** Late copies whose referral was finished (COMPLETED or REJECTED) when the copy was posted. */
  lateCopiesOfFinished: number;
  invalidWebhooks: { rejected: number; ignored: number };
  /** Webhooks ingest did not accept first time (retried, as PostHog would). */
  ingestRetries: number;
  faults: { shopify: Record<SoakShopifyFault, number>; customerio: Record<SoakCustomerIoFault, number>; total: number };
  /** Requests the fakes saw, and how many Shopify refused for its (not injected) bucket. */
  requests: { shopify: number; customerio: number; posthog: number; shopifyThrottledTotal: number };
  crashes: { soft: Record<Checkpoint, number>; hard: Record<Checkpoint, number>; total: number };
  ledgerBegins: { acquired: number; busy: number; finished: number; takeoversAfterHardCrash: number };
  pollerErrors: number;
  /** Messages in the DLQ after the chaos phases, and the ledger state of their referrals then. */
  deadLettered: { messages: number; referrals: number; failedWithReason: number; inProgress: number; finished: number };
  redriveRounds: number;
  cardsCreated: number;
  eventsSent: number;
  /** Resends Customer.io dropped because it had seen the id. */
  customerioDuplicatesIgnored: number;
  /** Codes replaced because Shopify had them on another referral's card (ledger codeCollisions). */
  codeCollisions: number;
  rewarded: number;
  statuses: {
    completed: number;
    rejected: number;
    failed: number;
    unaccounted: number;
    rejectionReasons: Record<string, number>;
    failureReasons: Record<string, number>;
  };
  /** Rewards owed and not (fully) given: a referral missing a card or its event, or a rule group paid too few. */
  lost: number;
  /** Rewards given twice: a second card for a role, a second event, a redeemer or referrer paid past the rules, stray cards/events. */
  doubled: number;
  /** Referrals the rules must refuse that got a card or an event anyway. */
  refusedButPaid: number;
  /** Referrals whose Customer.io codes, card codes and ledger codes do not all agree. */
  codeMismatches: number;
  /** Cards or events for invalid webhooks, or for no known referral (also counted in doubled). */
  stray: number;
  /** Finished referrals without exactly one distinct PostHog outcome capture of the right kind. */
  captureMismatches: number;
  /** The sequence cases (soak/sequences.ts); their lost and doubled rewards are also in `lost` and `doubled`. */
  sequences: SequenceReport;
  /** The lifecycle rounds (soak/lifecycle.ts); their lost and doubled rewards are also in `lost` and `doubled`. */
  lifecycle: LifecycleReport;
  /** The qualification rounds (soak/qualify.ts); their lost and doubled rewards are also in `lost` and `doubled`. */
  qualification: QualifyReport;
  problems: ReferralProblem[];
}

/** The figures as a markdown table. */
export function formatReport(report: SoakReport): string {
  const kinds = (counts: Record<string, number>) =>
    Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ') || 'none';
  const s = report.settings;
  const rows: [string, string][] = [
    ['events (distinct referrals)', `${report.events}`],
    [
      '… the rules must refuse',
      `${report.planted.selfReferrals} self-referrals, ${report.planted.repeatRedeemerPairs} pairs with one redeemer (one each paid), ` +
        `${report.planted.cappedReferrerReferrals} by one referrer (cap ${s.referrerCap} paid)`,
    ],
    ['webhook deliveries of them', `${report.deliveries}`],
    [
      'duplicates',
      `${report.duplicates} extra deliveries of ${report.duplicatedEvents} referrals (${pct(report.duplicatedEvents, report.events)}): ` +
        `${report.duplicatesBy.burst} back to back, ${report.duplicatesBy.spread} spread out, ` +
        `${report.duplicatesBy.afterCompletion} after the first run (${report.lateCopiesOfFinished} to finished referrals)`,
    ],
    ['invalid webhooks', `${report.invalidWebhooks.rejected} malformed (422), ${report.invalidWebhooks.ignored} other events (200)`],
    ['faults injected: Shopify', `${sum(report.faults.shopify)} of ${report.requests.shopify} requests (${kinds(report.faults.shopify)})`],
    [
      'faults injected: Customer.io',
      `${sum(report.faults.customerio)} of ${report.requests.customerio} requests (${kinds(report.faults.customerio)})`,
    ],
    ['crashes: soft (exception after the step)', `${sum(report.crashes.soft)} (${kinds(report.crashes.soft)})`],
    ['crashes: hard (process dies, lease left held)', `${sum(report.crashes.hard)} (${kinds(report.crashes.hard)})`],
    ['workers polling', `${s.pollers}`],
    [
      'ledger begins',
      `${report.ledgerBegins.acquired} acquired, ${report.ledgerBegins.busy} busy (lease held elsewhere), ` +
        `${report.ledgerBegins.finished} already finished, ${report.ledgerBegins.takeoversAfterHardCrash} takeovers after a hard crash`,
    ],
    [
      'dead-lettered, redriven with faults off',
      `${report.deadLettered.messages} messages of ${report.deadLettered.referrals} referrals ` +
        `(then ${report.deadLettered.failedWithReason} FAILED with a reason, ${report.deadLettered.inProgress} IN_PROGRESS, ${report.deadLettered.finished} finished); ` +
        `${report.redriveRounds} round(s)`,
    ],
    [
      'cards created',
      `${report.cardsCreated} (expected ${report.expectedRewarded * 2}; ${report.codeCollisions} codes replaced after colliding with another referral's card)`,
    ],
    [
      'events sent',
      `${report.eventsSent} (expected ${report.expectedRewarded}; ${report.customerioDuplicatesIgnored} resends dropped by id)`,
    ],
    [
      'ledger at the end',
      `${report.statuses.completed} COMPLETED, ${report.statuses.rejected} REJECTED (${kinds(report.statuses.rejectionReasons)}), ` +
        `${report.statuses.failed} FAILED${report.statuses.failed ? ` (${kinds(report.statuses.failureReasons)})` : ''}, ${report.statuses.unaccounted} unaccounted`,
    ],
    [
      'sequence cases (#10), faults on',
      `${report.sequences.rounds} rounds of ${SEQUENCE_CASES.join(', ')}: ${report.sequences.lost} lost, ${report.sequences.doubled} doubled, ` +
        `${report.sequences.expiryWrong} with a wrong expiry, ${report.sequences.misdirected} misdirected`,
    ],
    ...lifecycleRows(report.lifecycle),
    ...qualificationRows(report.qualification),
    ['lost', `${report.lost}`],
    ['doubled', `${report.doubled}`],
    ['refused but paid', `${report.refusedButPaid}`],
    ['codes mailed ≠ codes on cards', `${report.codeMismatches}`],
    ['PostHog outcome captures wrong', `${report.captureMismatches}`],
    ['duration', `${(report.durationMs / 1000).toFixed(1)} s`],
  ];
  const header = `| figure | value |\n|---|---|\n`;
  const settings =
    `seed ${report.seed}; faults ${s.faultRate * 100} % per call; crash chance ${s.crashRate} per checkpoint (${s.hardCrashShare * 100} % hard); ` +
    `visibility timeout ${s.visibilityTimeoutSeconds} s, worker timeout ${s.workerTimeoutMs} ms, client timeout ${s.clientTimeoutMs} ms, maxReceiveCount ${s.maxReceiveCount}`;
  return `${header}${rows.map(([figure, value]) => `| ${figure} | ${value.replace(/\|/g, '\\|')} |`).join('\n')}\n\n${settings}. Result: **${report.ok ? 'PASS' : 'FAIL'}**`;
}
