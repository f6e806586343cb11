/**
 * Where a referral stands, told to the people waiting for it (CUSTOMERIO_STATUS_EVENT): one
 * Customer.io event on the redeemer's profile per status a person cares about. The id is derived
 * from (referral, status), so a retried send is dropped by Customer.io and each status is mailed
 * once. Never carries a reward code: codes travel only in the fulfilment event.
 */
export type ReferralStatus = 'awaiting_qualification' | 'held' | 'rewarded' | 'not_qualified' | 'cancelled';

export interface StatusMessage {
  /** The referral (PostHog event uuid): with `status`, what the event's id is derived from. */
  eventId: string;
  status: ReferralStatus;
  /** Whose profile the event lands on: the redeemer. */
  recipient: string;
  referrerEmail: string;
  redeemerEmail: string;
  /** awaiting_qualification: the deadline, epoch ms. */
  qualifyBy?: number;
  /** held: the earliest it pays, epoch ms. */
  paysAfter?: number;
  /** not_qualified, cancelled: why. */
  reason?: string;
}

/** The slice of the Customer.io client the status announcements need (lib/adapters/customerio.ts implements it). */
export interface StatusSender {
  sendStatus(message: StatusMessage): Promise<void>;
}

/** The status message for a referral's record: on the redeemer's profile, naming both people. */
export function statusMessage(
  record: { eventId: string; referrerEmail: string; redeemerEmail: string },
  status: ReferralStatus,
  details: Pick<StatusMessage, 'qualifyBy' | 'paysAfter' | 'reason'> = {},
): StatusMessage {
  const { eventId, referrerEmail, redeemerEmail } = record;
  return { eventId, status, recipient: redeemerEmail, referrerEmail, redeemerEmail, ...details };
}
