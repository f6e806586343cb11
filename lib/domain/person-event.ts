/**
 * A later event of a referral's redeemer that moves the referral on: QUALIFY_EVENT qualifies a
 * referral waiting for it, REVOKE_EVENT cancels one not yet paid (or, with REVOKE_PAID, revokes a
 * paid one). Ingest and the reconciler's catch-up put it on the same queue as a referral; the
 * worker tells the two apart by `kind`. Like a Referral, only bounded fields travel.
 */
export interface PersonEvent {
  v: 1;
  kind: 'person-event';
  /** Which setting the event's name matched. */
  role: 'qualify' | 'revoke';
  /** PostHog's event uuid: a repeat of the same event does nothing more. */
  eventId: string;
  eventName: string;
  /** When it happened (PostHog's `timestamp`), ISO: an event from before the referral never qualifies it. */
  occurredAt: string;
  /** The PostHog person (`person.id` in the webhook body): who the event is about. */
  personId?: string;
  /** Fallbacks when the person id is absent, in this order. */
  distinctId?: string;
  email?: string;
  /** The app backend's signature over the event (lib/domain/vouch.ts), like a referral's. */
  signature?: string;
}

export const isPersonEvent = (message: unknown): message is PersonEvent =>
  typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === 'person-event';
