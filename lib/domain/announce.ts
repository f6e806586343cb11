/**
 * Telling a referral's status (CUSTOMERIO_STATUS_EVENT) after the ledger write that reached it.
 * The announcement never decides the money path: the state is already stored when it is told, so
 * a PermanentError from the status sender (a date it cannot read, an identifier Customer.io
 * refuses) is reported (logged and counted by whoever wired `onStatusFailed`) and the referral, or
 * the person event, goes on; it must not send either to the DLQ. A retryable failure is thrown:
 * the message comes again and tells it again, which Customer.io drops as a repeat (the id is
 * derived from the referral and the status).
 */
import { PermanentError } from './errors';
import type { LedgerRecord } from './ledger-port';
import { statusMessage, type ReferralStatus, type StatusMessage, type StatusSender } from './status';

/** A status that could not be told, for the log and the StatusAnnouncementsFailed metric. */
export interface StatusFailure {
  /** The referral (PostHog event uuid). */
  eventId: string;
  status: ReferralStatus;
  /** PermanentError's reason, e.g. customerio_invalid_event. */
  reason: string;
  /** The sender's message: the adapters keep emails, keys and codes out of it. */
  message: string;
}

/** Where a status is told, and who hears of one that could not be. */
export interface Announcer {
  /** Absent: statuses are not told (CUSTOMERIO_STATUS_EVENT unset). */
  status?: StatusSender;
  /** Told of each status refused for good; absent: the refusal is dropped, the money path goes on either way. */
  onStatusFailed?: (failure: StatusFailure) => void;
}

/** Says where a referral stands; see the header for what a failure does. */
export async function announce(
  announcer: Announcer,
  retry: (<T>(fn: () => Promise<T>) => Promise<T>) | undefined,
  record: Pick<LedgerRecord, 'eventId' | 'referrerEmail' | 'redeemerEmail'>,
  what: ReferralStatus,
  { qualifyBy, paysAfter, reason }: Pick<StatusMessage, 'qualifyBy' | 'paysAfter' | 'reason'> = {},
): Promise<void> {
  const { status } = announcer;
  if (!status) return;
  // Each date only when it is a time: a record missing `releaseAt` or `qualifyBy` (written by an older
  // release, or by hand) reads as NaN, and the status is then told without its date rather than refused for it.
  const details = {
    ...(Number.isFinite(qualifyBy) ? { qualifyBy } : {}),
    ...(Number.isFinite(paysAfter) ? { paysAfter } : {}),
    ...(reason !== undefined ? { reason } : {}),
  };
  const send = () => status.sendStatus(statusMessage(record, what, details));
  try {
    await (retry ? retry(send) : send());
  } catch (error) {
    if (!(error instanceof PermanentError)) throw error;
    announcer.onStatusFailed?.({ eventId: record.eventId, status: what, reason: error.reason, message: error.message });
  }
}
