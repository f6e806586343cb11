/**
 * The domain's two outbound messages, in the domain's words: "mail both people their codes"
 * (Customer.io) and "this referral reached this outcome" (PostHog). The wire shapes, the
 * campaign's data keys and PostHog's event and property names, live in the adapters
 * (lib/adapters/customerio.ts, lib/adapters/posthog-capture.ts), so changing the campaign
 * template or a PostHog property does not touch fulfilment.
 */
/** The fulfilment message: both codes to both people, sent as one event to the redeemer. */
export interface FulfilmentMessage {
  /** The referral (PostHog event uuid); not sent, it names the referral for the adapter and the fakes. */
  eventId: string;
  /** The event's name (CUSTOMERIO_EVENT): what triggers the campaign. */
  name: string;
  /** Whose profile the event lands on: the redeemer, the person the rules judged. */
  recipient: string;
  referrerEmail: string;
  redeemerEmail: string;
  referrerCode: string;
  redeemerCode: string;
  /** Fixed in the ledger at begin (a ULID from the PostHog uuid): Customer.io drops a repeated id. */
  id: string;
  /** Unix seconds. */
  timestamp: number;
}

/** The slice of the Customer.io client fulfilment needs (lib/adapters/customerio.ts implements it). */
export interface EventSender {
  sendFulfilment(message: FulfilmentMessage): Promise<void>;
}

/** Where a referral ended up (README "Outcomes in PostHog"). */
export type Outcome = 'fulfilled' | 'rejected' | 'held' | 'released' | 'revoked' | 'qualified' | 'not_qualified' | 'cancelled';

/** What an outcome adds, when it has it. */
export interface OutcomeDetails {
  /** Why it was refused or revoked (a RefusalReason, reviewer_rejected, the operator's reason). */
  reason?: string;
  /** A release after review: how the reviewer decided. */
  reviewDecision?: string;
  /** A hold: when it is released, epoch ms. */
  releaseAt?: number;
  /** A revoke: whether it came before anything was paid. */
  beforePayout?: boolean;
}

/** One outcome of one referral; never a code. The same outcome of the same referral is one event. */
export interface OutcomeCapture {
  outcome: Outcome;
  eventId: string;
  /** The PostHog person (posthogDistinctId). */
  distinctId: string;
  referrerEmail: string;
  redeemerEmail: string;
  /** A RewardType; for the operator's commands on records without one, REWARD_TYPE as configured. */
  rewardType: string;
  /** Per person, as the ledger holds it ("25.00"). */
  rewardAmount: string;
  extra?: OutcomeDetails;
}

/** The slice of the PostHog capture client fulfilment and the lifecycle need (lib/adapters/posthog-capture.ts implements it). */
export interface OutcomeTracker {
  track(capture: OutcomeCapture): Promise<void>;
}
