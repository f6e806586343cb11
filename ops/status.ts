/** `status <eventId>`: one referral's ledger record, in plain words, with emails and codes masked. */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Ledger, type Decision, type LedgerRecord, type LedgerStatus } from '../lib/adapters/dynamodb/ledger';
import { maskCode, maskEmail } from '../lib/infra/mask';
import { redact } from './redact';
import type { LifecycleRecord } from '../lib/adapters/dynamodb/ledger';
import { heldSince, reviewSince } from '../lib/domain/lifecycle/record';

export interface StatusStep {
  step: 'codes' | 'decision' | 'referrerCard' | 'redeemerCard' | 'customerio' | 'posthog' | 'completed' | 'rejected';
  label: string;
  done: boolean;
  /** ISO time the step was recorded. */
  at?: string;
  detail?: string;
}

export interface StatusReport {
  eventId: string;
  found: boolean;
  status?: LedgerStatus;
  /** The program rules' verdict, on ledgers that record one. */
  decision?: Decision;
  rejectionReason?: string;
  referrer?: { email: string; code: string };
  redeemer?: { email: string; code: string };
  /** The Customer.io identifier (masked) and the event id Customer.io deduplicates on. */
  customer?: { email: string; customerioEventId?: string };
  steps: StatusStep[];
  attempts: number;
  codeCollisions: number;
  lastError?: string;
  failureReason?: string;
  failedAt?: string;
  /** Present while a worker holds the referral. */
  lease?: { owner: string; expiresAt: string };
  createdAt?: string;
  updatedAt?: string;
  /** The reward lifecycle (hold, review, revoke), on records that went through it. */
  lifecycle?: {
    releaseAt?: string;
    heldAt?: string;
    releasedAt?: string;
    reviewReasons?: string[];
    reviewSince?: string;
    reviewDecision?: string;
    reviewedAt?: string;
    reviewNote?: string;
    revokeReason?: string;
    revokedAt?: string;
    revokedBeforePayout?: boolean;
    balanceLeft?: { referrer?: string; redeemer?: string };
  };
  /** Pay on value (README "Pay on value"), on records that waited for a qualifying event. */
  qualification?: {
    /** The deadline for the redeemer's qualifying event. */
    qualifyBy: string;
    qualifiedAt?: string;
    qualifyingEventId?: string;
    notQualifiedAt?: string;
  };
  /** What the operator should do now. */
  advice: string;
}

export interface StatusSource {
  ddb: DynamoDBDocumentClient;
  tableName: string;
}

export async function referralStatus(source: StatusSource, eventId: string): Promise<StatusReport> {
  const record = await new Ledger(source.ddb, source.tableName).get(eventId);
  return record ? describeRecord(record) : notFound(eventId);
}

function notFound(eventId: string): StatusReport {
  return {
    eventId,
    found: false,
    steps: [],
    attempts: 0,
    codeCollisions: 0,
    advice:
      'no record: the worker has not started this referral. It may still be queued, sitting in the DLQ ' +
      '(`dlq list`), ignored by ingest, acknowledged by a DRY_RUN worker, or the id may be wrong ' +
      '(it is the PostHog event uuid).',
  };
}

function describeRecord(record: LedgerRecord): StatusReport {
  const status = record.status;
  const codes = [record.referrerCode, record.redeemerCode];
  const steps: StatusStep[] = [
    {
      step: 'codes',
      label: 'codes chosen',
      done: Boolean(record.referrerCode && record.redeemerCode),
      at: record.referrerCode ? record.createdAt : undefined,
    },
  ];
  if (record.decision) {
    steps.push({
      step: 'decision',
      label: 'rules decision',
      done: true,
      detail: [record.decision, record.rejectionReason].filter(Boolean).join(': '),
    });
  }
  if (status === 'REJECTED' || record.decision === 'REJECTED') {
    if (record.posthogAt) steps.push({ step: 'posthog', label: 'PostHog outcome', done: true, at: record.posthogAt });
    steps.push({ step: 'rejected', label: 'refused (final)', done: status === 'REJECTED', at: record.rejectedAt });
  } else {
    steps.push(
      {
        step: 'referrerCard',
        label: 'referrer gift card',
        done: Boolean(record.referrerCardId),
        at: record.referrerCardAt,
        detail: record.referrerCardId,
      },
      {
        step: 'redeemerCard',
        label: 'redeemer gift card',
        done: Boolean(record.redeemerCardId),
        at: record.redeemerCardAt,
        detail: record.redeemerCardId,
      },
      { step: 'customerio', label: 'Customer.io event', done: Boolean(record.customerioAt), at: record.customerioAt },
    );
    if (record.posthogAt) steps.push({ step: 'posthog', label: 'PostHog outcome', done: true, at: record.posthogAt });
    // A revoked referral was completed (paid) first; its revoke is shown on its own line.
    steps.push({
      step: 'completed',
      label: 'completed',
      done: status === 'COMPLETED' || Boolean(record.completedAt),
      at: record.completedAt,
    });
  }
  const leaseActive = record.leaseOwner !== undefined && record.leaseExpiresAt !== undefined;
  return {
    eventId: record.eventId,
    found: true,
    status,
    ...(record.decision ? { decision: record.decision } : {}),
    ...(record.rejectionReason ? { rejectionReason: record.rejectionReason } : {}),
    referrer: record.referrerEmail ? { email: maskEmail(record.referrerEmail), code: maskCode(record.referrerCode) } : undefined,
    redeemer: record.redeemerEmail ? { email: maskEmail(record.redeemerEmail), code: maskCode(record.redeemerCode) } : undefined,
    customer: record.customerEmail ? { email: maskEmail(record.customerEmail), customerioEventId: record.customerioEventId } : undefined,
    steps,
    attempts: record.attempts ?? 0,
    codeCollisions: record.codeCollisions ?? 0,
    lastError: redact(record.lastError, codes),
    failureReason: record.failureReason,
    failedAt: record.failedAt,
    lease: leaseActive ? { owner: record.leaseOwner!, expiresAt: new Date(record.leaseExpiresAt!).toISOString() } : undefined,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...lifecycleOf(record as LifecycleRecord),
    ...qualificationOf(record as LifecycleRecord),
    advice: adviceFor(record),
  };
}

function lifecycleOf(record: LifecycleRecord): Pick<StatusReport, 'lifecycle'> {
  if (!record.parkedAt && !record.revokeReason) return {};
  const balance =
    record.referrerBalanceLeft || record.redeemerBalanceLeft
      ? { referrer: record.referrerBalanceLeft, redeemer: record.redeemerBalanceLeft }
      : undefined;
  const lifecycle = {
    releaseAt: record.releaseAt ? new Date(Number(record.releaseAt)).toISOString() : undefined,
    heldAt: heldSince(record),
    releasedAt: record.releasedAt,
    reviewReasons: record.reviewReasons,
    reviewSince: reviewSince(record),
    reviewDecision: record.reviewDecision,
    reviewedAt: record.reviewedAt,
    reviewNote: record.reviewNote,
    revokeReason: record.revokeReason,
    revokedAt: record.revokedAt,
    revokedBeforePayout: record.revokedBeforePayout,
    balanceLeft: balance,
  };
  return { lifecycle: Object.fromEntries(Object.entries(lifecycle).filter(([, v]) => v !== undefined)) };
}

function qualificationOf(record: LifecycleRecord): Pick<StatusReport, 'qualification'> {
  if (record.qualifyBy === undefined) return {};
  const qualification = {
    qualifyBy: new Date(Number(record.qualifyBy)).toISOString(),
    qualifiedAt: record.qualifiedAt,
    qualifyingEventId: record.qualifyingEventId,
    notQualifiedAt: record.notQualifiedAt,
  };
  return {
    qualification: Object.fromEntries(Object.entries(qualification).filter(([, v]) => v !== undefined)) as StatusReport['qualification'],
  };
}

/** The state's name as the machine calls it (lib/domain/machine.ts): a waiting referral is stored AWAITING. */
export const stateName = (status: LedgerStatus): string => (status === 'AWAITING' ? 'AWAITING_QUALIFICATION' : status);

function adviceFor(record: LedgerRecord): string {
  const parked = record as LifecycleRecord;
  switch (record.status) {
    case 'AWAITING':
      return (
        `waiting for the redeemer's qualifying event (QUALIFY_EVENT) until ${new Date(Number(parked.qualifyBy)).toISOString()}: ` +
        'nothing is issued until it arrives; past that it becomes NOT_QUALIFIED. `revoke` cancels it.'
      );
    case 'NOT_QUALIFIED':
      return `not qualified: no qualifying event by ${new Date(Number(parked.qualifyBy)).toISOString()}. Final, by design; its claims are released. Nothing to redrive.`;
    case 'HELD':
      return `held until ${new Date(Number(record.releaseAt)).toISOString()}: nothing is issued until then; the releaser then pays it. \`revoke\` cancels it.`;
    case 'REVIEW':
      return `waiting for an operator (${(parked.reviewReasons ?? []).join(', ')}): \`review approve\` to pay it, \`review reject --reason\` to refuse it.`;
    case 'REVOKED':
      return parked.revokedBeforePayout
        ? `cancelled before payout (${parked.revokeReason}): nothing was issued.`
        : `revoked (${parked.revokeReason}): both rewards are deactivated in Shopify.`;
    case 'REJECTED':
      return `refused by the program rules (${record.rejectionReason ?? 'no reason recorded'}): no rewards, by design. Nothing to redrive.`;
    case 'COMPLETED':
      if (parked.revokeRequestedAt && !parked.revokedAt && parked.lifecycleQueue === 'revoking')
        return (
          `paid, and its revoke was requested (${parked.revokeReason ?? 'no reason recorded'}) but not finished: the releaser ` +
          'deactivates both rewards on its next run (every minute). Still so after a few minutes: its log names why (RevokesFailed); `revoke` finishes it too.'
        );
      if (parked.revokeRequestedAt && !parked.revokedAt)
        return `paid, and its revoke was requested (${parked.revokeReason ?? 'no reason recorded'}) but not finished: run \`revoke\` to deactivate both rewards.`;
      return 'nothing to do: both gift cards exist and Customer.io has the event. A redelivery would change nothing.';
    case 'FAILED':
      return (
        `failed (${record.failureReason ?? 'unknown reason'}): the message is in the DLQ. Fix the cause ` +
        '(docs/OPERATIONS.md), then `redrive`: the steps already done are kept and not repeated.'
      );
    default:
      return record.leaseOwner
        ? `a worker is on it (lease until ${new Date(record.leaseExpiresAt ?? 0).toISOString()}); if it stays IN_PROGRESS, SQS retries it after the visibility timeout.`
        : 'between attempts: SQS redelivers it after the visibility timeout (see lastError).';
  }
}

/** The report as lines for a terminal. */
export function formatStatus(report: StatusReport): string {
  if (!report.found) return `Referral ${report.eventId}: ${report.advice}`;
  const failed = report.status === 'FAILED';
  const why = failed ? report.failureReason : report.status === 'REJECTED' ? report.rejectionReason : undefined;
  const lines = [`Referral ${report.eventId}: ${report.status ? stateName(report.status) : '-'}${why ? ` (${why})` : ''}`];
  if (report.referrer) lines.push(`  referrer     ${report.referrer.email}   code ${report.referrer.code || '-'}`);
  if (report.redeemer) lines.push(`  redeemer     ${report.redeemer.email}   code ${report.redeemer.code || '-'}`);
  if (report.customer) lines.push(`  Customer.io  ${report.customer.email}   event id ${report.customer.customerioEventId ?? '-'}`);
  lines.push('  steps:');
  for (const step of report.steps) {
    const mark = step.done ? 'done' : 'not yet';
    const when = step.at ? `  ${step.at}` : '';
    const detail = step.detail ? `  (${step.detail})` : '';
    lines.push(`    ${step.label.padEnd(20)} ${mark.padEnd(8)}${when}${detail}`.trimEnd());
  }
  lines.push(`  attempts     ${report.attempts}${report.codeCollisions ? `, code collisions ${report.codeCollisions}` : ''}`);
  if (report.lease) lines.push(`  held by      ${report.lease.owner} until ${report.lease.expiresAt}`);
  if (report.lastError) lines.push(`  ${report.status === 'COMPLETED' ? 'earlier err ' : 'last error  '} ${report.lastError}`);
  if (report.failureReason) {
    // The failure fields stay on the record after a redrive: label an old one as such.
    const label = failed ? 'failure     ' : 'earlier fail';
    lines.push(`  ${label} ${report.failureReason}${report.failedAt ? ` at ${report.failedAt}` : ''}${failed ? '' : ' (redriven since)'}`);
  }
  const l = report.lifecycle;
  if (l?.releaseAt)
    lines.push(`  hold         held ${l.heldAt ?? '-'} until ${l.releaseAt}${l.releasedAt ? `, released ${l.releasedAt}` : ''}`);
  if (l?.reviewSince) {
    const decided = l.reviewDecision ? `, ${l.reviewDecision} ${l.reviewedAt ?? ''}${l.reviewNote ? ` (${l.reviewNote})` : ''}` : '';
    lines.push(`  review       since ${l.reviewSince} (${(l.reviewReasons ?? []).join(', ')})${decided}`);
  }
  if (l?.revokeReason) {
    const balance = l.balanceLeft
      ? `, balance left referrer ${l.balanceLeft.referrer ?? '-'} / redeemer ${l.balanceLeft.redeemer ?? '-'}`
      : '';
    lines.push(
      `  revoke       ${l.revokeReason}${l.revokedAt ? ` at ${l.revokedAt}` : ' (not finished: run revoke again)'}${l.revokedBeforePayout ? ', before payout' : ''}${balance}`,
    );
  }
  const q = report.qualification;
  if (q) {
    const outcome = q.qualifiedAt
      ? `, qualified ${q.qualifiedAt} by ${q.qualifyingEventId ?? '-'}`
      : q.notQualifiedAt
        ? `, not qualified (found ${q.notQualifiedAt})`
        : '';
    lines.push(`  qualify by   ${q.qualifyBy}${outcome}`);
  }
  lines.push(`  created ${report.createdAt ?? '-'}, updated ${report.updatedAt ?? '-'}`);
  lines.push(`  → ${report.advice}`);
  return lines.join('\n');
}
