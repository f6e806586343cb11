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
 *
 * With QUALIFY_EVENT or REVOKE_EVENT set, each run then catches up on those too: the window's
 * qualifying (QUALIFY_WHERE applied by PostHog, as in the destination's filter) and refund events
 * of persons who redeemed a referral in the lookback before it, read by the same parseWebhook and
 * queued unless the ledger has `person-event#<uuid>` (the worker writes it once it has handled the
 * event). The worker is idempotent by that uuid too, so a catch-up racing the webhook is harmless.
 */
import { PermanentError, RejectedError } from './errors';
import { maskEmail } from '../infra/mask';
import { parseWebhook, type ParsedWebhook, type PayloadOptions } from '../inbound/posthog-webhook';
import type { PersonEvent } from './person-event';
import type { Referral } from './referral';
import type { EventRow, EventWindow, PersonEventWindow } from '../adapters/posthog-query';

/** The WARN lines the reconciler's alarms count (serverless.yml metric filters match them exactly). */
export const MISSING_LOG_MESSAGE = 'reconcile: referral missing from the ledger, queueing it';
export const UNRECONCILABLE_LOG_MESSAGE = 'reconcile: referral event cannot be reconciled, not queued';

export interface ReconcileSource {
  pages(window: EventWindow): AsyncIterable<EventRow[]>;
  /** The catch-up's rows: QUALIFY_EVENT / REVOKE_EVENT events of referrals' redeemers. */
  personEventPages(window: PersonEventWindow): AsyncIterable<EventRow[]>;
}

/** What goes on the queue: a referral, or a redeemer's later event (the worker tells them apart by `kind`). */
export type QueuedMessage = Referral | PersonEvent;

export interface ReconcileLogger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface ReconcileDeps {
  source: ReconcileSource;
  /** The event ids (lower case) of these that the ledger has, in any state. */
  inLedger(eventIds: readonly string[]): Promise<Set<string>>;
  /** The person-event uuids (lower case) of these that the worker has handled (`person-event#<uuid>`). */
  personEventsInLedger(eventIds: readonly string[]): Promise<Set<string>>;
  enqueue(message: QueuedMessage): Promise<unknown>;
  log: ReconcileLogger;
}

export interface ReconcileWindow {
  /** Epoch ms; inclusive. */
  since: number;
  /** Epoch ms; exclusive. */
  until: number;
}

/** The catch-up's settings (lib/infra/config-reconciler.ts PersonEventSettings), with RECONCILE_FROM. */
export interface CatchUpOptions {
  qualifyEvent?: string;
  qualifyWhere?: string;
  qualifyWithinMs: number;
  revokeEvent?: string;
  /** Epoch ms (RECONCILE_FROM): a refund may cancel or revoke any referral since go-live. */
  referralsFrom: number;
}

export interface ReconcileOptions extends PayloadOptions {
  window: ReconcileWindow;
  /** Off when absent or when neither event is set. */
  catchUp?: CatchUpOptions;
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
  /** The catch-up's counts, when it ran (no people named: each queued one has a WARN line with its uuid and role). */
  personEvents?: PersonEventCounts;
}

export interface PersonEventCounts {
  /** Distinct qualifying / refund events PostHog returned for referrals' redeemers. */
  seen: number;
  /** Already handled by the worker (`person-event#<uuid>` in the ledger). */
  known: number;
  /** Not handled yet: queued, or (dry run) would be. */
  missing: number;
  queued: number;
  /** Rows parseWebhook refuses: logged, never queued. */
  unreconcilable: number;
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
  if (!row.personEmail && !row.personId) return JSON.stringify({ event });
  const person = { ...(row.personId ? { id: row.personId } : {}), properties: row.personEmail ? { email: row.personEmail } : {} };
  return JSON.stringify({ event, person });
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

  const pages = deps.source.pages({ event: options.referralEvent, since: report.since, until: report.until, pageSize: options.pageSize });
  await queueMissing(deps, options, pages, {
    counts: report,
    read: (parsed) => (parsed.kind === 'referral' ? parsed.referral : undefined), // the query asked for one event name only
    // The webhook would have answered 4xx for these too: someone has to fix the event or pay it by hand.
    refused: (row, reason) => {
      report.unreconcilable.push({ ...row, reason });
      deps.log.warn(UNRECONCILABLE_LOG_MESSAGE, { ...row, reason });
    },
    id: (referral) => referral.eventId,
    inLedger: deps.inLedger,
    missing: (referral) => {
      const finding = {
        eventId: referral.eventId,
        occurredAt: referral.occurredAt,
        referrer: maskEmail(referral.referrerEmail),
        redeemer: maskEmail(referral.redeemerEmail),
      };
      report.missing.push(finding);
      deps.log.warn(options.dryRun ? 'reconcile: referral missing from the ledger (dry run, not queued)' : MISSING_LOG_MESSAGE, finding);
    },
  });
  if (options.catchUp && (options.catchUp.qualifyEvent || options.catchUp.revokeEvent))
    await catchUp(deps, options, options.catchUp, report);
  // Counts only: the findings name people (masked) and are in the WARN lines already.
  deps.log.info('reconcile: done', { ...report, missing: report.missing.length, unreconcilable: report.unreconcilable.length });
  return report;
}

/**
 * The catch-up (see the header). A qualifying event counts for referrals redeemed up to
 * QUALIFY_WITHIN before it, so that is how far back the query looks for redeemers; a refund may
 * cancel or (REVOKE_PAID) revoke any referral since RECONCILE_FROM.
 */
async function catchUp(deps: ReconcileDeps, options: ReconcileOptions, settings: CatchUpOptions, report: ReconcileReport): Promise<void> {
  const since = Date.parse(report.since);
  const iso = (ms: number): string => new Date(ms).toISOString();
  const pages = deps.source.personEventPages({
    referralEvent: options.referralEvent,
    qualify: settings.qualifyEvent
      ? { event: settings.qualifyEvent, where: settings.qualifyWhere, referralsSince: iso(since - settings.qualifyWithinMs) }
      : undefined,
    revoke: settings.revokeEvent
      ? { event: settings.revokeEvent, referralsSince: iso(Math.min(settings.referralsFrom, since - settings.qualifyWithinMs)) }
      : undefined,
    since: report.since,
    until: report.until,
    pageSize: options.pageSize,
  });
  const counts: PersonEventCounts = { seen: 0, known: 0, missing: 0, queued: 0, unreconcilable: 0 };
  report.personEvents = counts;
  await queueMissing(deps, { ...options, qualifyEvent: settings.qualifyEvent, revokeEvent: settings.revokeEvent }, pages, {
    counts,
    read: (parsed) => (parsed.kind === 'person-event' ? parsed.event : undefined),
    // The catch-up's WARN lines: no alarm counts them (a lost qualifying event is recovered, not lost money).
    refused: (row) => {
      counts.unreconcilable++;
      deps.log.warn('reconcile: qualifying or refund event cannot be reconciled, not queued', row);
    },
    id: (event) => event.eventId.toLowerCase(),
    inLedger: deps.personEventsInLedger,
    missing: (event) => {
      counts.missing++;
      // The uuid, role and time only: a person event's email is the redeemer's, never logged.
      const finding = { eventId: event.eventId, role: event.role, occurredAt: event.occurredAt };
      const message = options.dryRun
        ? 'reconcile: qualifying or refund event not handled yet (dry run, not queued)'
        : 'reconcile: qualifying or refund event missing from the ledger, queueing it';
      deps.log.warn(message, finding);
    },
  });
}

/** One pass of the reconciler: how it reads, dedupes (`id`: its key in the ledger), counts and reports its rows. */
interface Pass<T extends QueuedMessage> {
  counts: { seen: number; known: number; queued: number };
  read(parsed: ParsedWebhook): T | undefined;
  /** A row parseWebhook refuses: told, never queued. */
  refused(row: Omit<Unreconcilable, 'reason'>, reason: string): void;
  id(message: T): string;
  inLedger(ids: readonly string[]): Promise<Set<string>>;
  /** Told before it is queued (or, in a dry run, instead). */
  missing(message: T): void;
}

/**
 * Each page's rows read by parseWebhook (as ingest reads the webhook's body for the same event),
 * the repeats dropped (PostHog's own dedupe by uuid is best-effort), and what the ledger lacks queued.
 */
async function queueMissing<T extends QueuedMessage>(
  deps: ReconcileDeps,
  options: ReconcileOptions,
  pages: AsyncIterable<EventRow[]>,
  pass: Pass<T>,
): Promise<void> {
  const seen = new Set<string>();
  for await (const rows of pages) {
    const messages: T[] = [];
    for (const row of rows) {
      const message = readRow(row, options, pass);
      if (!message || seen.has(pass.id(message))) continue;
      seen.add(pass.id(message));
      messages.push(message);
    }
    pass.counts.seen += messages.length;
    const known = await pass.inLedger(messages.map(pass.id));
    for (const message of messages) {
      if (known.has(pass.id(message))) {
        pass.counts.known++;
        continue;
      }
      pass.missing(message);
      if (!options.dryRun) {
        await deps.enqueue(message);
        pass.counts.queued++;
      }
    }
  }
}

function readRow<T extends QueuedMessage>(row: EventRow, options: PayloadOptions, pass: Pass<T>): T | undefined {
  try {
    return pass.read(parseWebhook(webhookBody(row), options));
  } catch (error) {
    if (!(error instanceof RejectedError) && !(error instanceof PermanentError)) throw error;
    const code = error instanceof RejectedError ? error.code : error.reason;
    pass.refused({ eventId: row.uuid || undefined, occurredAt: row.timestamp || undefined, code }, error.message);
    return undefined;
  }
}
