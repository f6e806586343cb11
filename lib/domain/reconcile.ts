/**
 * The reconciler: what PostHog has that our ledger does not.
 *
 * PostHog's webhook destination gives up after 3 attempts over a few seconds, and never retries
 * our 4xx answers (docs/CONTRACTS.md §1); there is no bulk replay. So every RECONCILE_INTERVAL
 * we ask PostHog's Query API for the referral events of a sliding window and queue the ones the
 * ledger has never seen, exactly as ingest would have: each row is turned back into the body
 * PostHog's default webhook template sends and read by the same parseWebhook, then queued with
 * the same enqueueReferral. A reconciled referral is paid exactly like a webhooked one.
 *
 * Re-queueing is always safe: the worker is idempotent by event uuid (the ledger's begin), so a
 * referral the webhook delivers at the same moment, or one queued by ingest and not begun yet,
 * is paid once. Events younger than `minAgeMs` are left for the next run, so the normal webhook
 * path is not doubled on every run.
 */
import { PermanentError, RejectedError } from './errors';
import { maskEmail } from '../infra/mask';
import { parseWebhook, type PayloadOptions } from '../inbound/posthog-webhook';
import type { Referral } from './referral';
import type { EventRow, EventWindow } from '../adapters/posthog-query';

/** The WARN lines the reconciler's alarms count (serverless.yml metric filters match them exactly). */
export const MISSING_LOG_MESSAGE = 'reconcile: referral missing from the ledger, queueing it';
export const UNRECONCILABLE_LOG_MESSAGE = 'reconcile: referral event cannot be reconciled, not queued';

export interface ReconcileSource {
  pages(window: EventWindow): AsyncIterable<EventRow[]>;
}

export interface ReconcileLogger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface ReconcileDeps {
  source: ReconcileSource;
  /** The event ids (lower case) of these that the ledger has, in any state. */
  inLedger(eventIds: readonly string[]): Promise<Set<string>>;
  enqueue(referral: Referral): Promise<unknown>;
  log: ReconcileLogger;
}

export interface ReconcileWindow {
  /** Epoch ms; inclusive. */
  since: number;
  /** Epoch ms; exclusive. */
  until: number;
}

export interface ReconcileOptions extends PayloadOptions {
  window: ReconcileWindow;
  /** List only: queue nothing. */
  dryRun?: boolean;
  pageSize?: number;
}

export interface Finding {
  eventId: string;
  occurredAt?: string;
  referrer: string;
  redeemer: string;
}

export interface Unreconcilable {
  eventId?: string;
  occurredAt?: string;
  code: string;
  reason: string;
}

export interface ReconcileReport {
  since: string;
  until: string;
  dryRun: boolean;
  /** Distinct referral events PostHog returned. */
  seen: number;
  /** Already in the ledger (any state). */
  known: number;
  /** Not in the ledger: queued, or (dry run) would be. Emails masked. */
  missing: Finding[];
  queued: number;
  /** Rows parseWebhook refuses (e.g. no redeemer email): counted and logged, never queued. */
  unreconcilable: Unreconcilable[];
}

export interface ReconcileSettings {
  /** Epoch ms: the go-live moment; nothing before it is ever looked at. */
  from: number;
  lookbackMs: number;
  minAgeMs: number;
}

/** The scheduled run's window: max(RECONCILE_FROM, now − lookback) .. now − min age. */
export function slidingWindow(settings: ReconcileSettings, now: number): ReconcileWindow {
  return { since: Math.max(settings.from, now - settings.lookbackMs), until: now - settings.minAgeMs };
}

/** PostHog's default webhook body for one Query API row, so parseWebhook reads it as ingest would. */
export function webhookBody(row: EventRow): string {
  let properties: unknown = row.properties;
  if (typeof properties === 'string') {
    try {
      properties = JSON.parse(properties);
    } catch {
      // parseWebhook refuses a non-object as invalid_properties; keep the string for that.
    }
  }
  const event = { uuid: row.uuid, event: row.event, distinct_id: row.distinctId, properties, timestamp: row.timestamp };
  return JSON.stringify(row.personEmail ? { event, person: { properties: { email: row.personEmail } } } : { event });
}

export async function reconcile(deps: ReconcileDeps, options: ReconcileOptions): Promise<ReconcileReport> {
  const { window } = options;
  const report: ReconcileReport = {
    since: new Date(window.since).toISOString(),
    until: new Date(window.until).toISOString(),
    dryRun: options.dryRun === true,
    seen: 0,
    known: 0,
    missing: [],
    queued: 0,
    unreconcilable: [],
  };
  if (window.until <= window.since) return report;

  const seen = new Set<string>();
  const pages = deps.source.pages({ event: options.referralEvent, since: report.since, until: report.until, pageSize: options.pageSize });
  for await (const rows of pages) {
    const referrals: Referral[] = [];
    for (const row of rows) {
      const referral = readRow(row, options, report, deps.log);
      // PostHog's own dedupe by uuid is best-effort: one referral may come back twice.
      if (!referral || seen.has(referral.eventId)) continue;
      seen.add(referral.eventId);
      referrals.push(referral);
    }
    report.seen += referrals.length;
    const known = await deps.inLedger(referrals.map((referral) => referral.eventId));
    for (const referral of referrals) {
      if (known.has(referral.eventId)) {
        report.known++;
        continue;
      }
      const finding = {
        eventId: referral.eventId,
        occurredAt: referral.occurredAt,
        referrer: maskEmail(referral.referrerEmail),
        redeemer: maskEmail(referral.redeemerEmail),
      };
      report.missing.push(finding);
      deps.log.warn(options.dryRun ? 'reconcile: referral missing from the ledger (dry run, not queued)' : MISSING_LOG_MESSAGE, finding);
      if (!options.dryRun) {
        await deps.enqueue(referral);
        report.queued++;
      }
    }
  }
  deps.log.info('reconcile: done', {
    since: report.since,
    until: report.until,
    seen: report.seen,
    known: report.known,
    missing: report.missing.length,
    queued: report.queued,
    unreconcilable: report.unreconcilable.length,
    dryRun: report.dryRun,
  });
  return report;
}

function readRow(row: EventRow, options: PayloadOptions, report: ReconcileReport, log: ReconcileLogger): Referral | undefined {
  try {
    const parsed = parseWebhook(webhookBody(row), options);
    if (parsed.kind === 'referral') return parsed.referral;
    return undefined; // another event name: the query asked for one name only, so nothing to do
  } catch (error) {
    if (!(error instanceof RejectedError) && !(error instanceof PermanentError)) throw error;
    const code = error instanceof RejectedError ? error.code : error.reason;
    const entry = { eventId: row.uuid || undefined, occurredAt: row.timestamp || undefined, code, reason: error.message };
    report.unreconcilable.push(entry);
    // The webhook would have answered 4xx for this one too: someone has to fix the event or pay it by hand.
    log.warn(UNRECONCILABLE_LOG_MESSAGE, entry);
    return undefined;
  }
}
