import { posthogDistinctId } from '../ledger-port';
import type { Referral } from '../referral';
import type { Outcome, OutcomeDetails, OutcomeTracker } from '../notify-ports';

/**
 * One outcome for PostHog, the worker's (fulfilled, rejected) and the lifecycle's alike (README
 * "Outcomes in PostHog"): the same referral fields, never a code. The adapter (lib/adapters/posthog-capture.ts) names
 * the event and derives its uuid from the referral and the outcome, so a repeat is dropped.
 */
export function captureOutcome(
  posthog: OutcomeTracker,
  outcome: Outcome,
  /** Who and what it is about: the referral as queued, or as the ledger record remembers it. */
  subject: Pick<Referral, 'eventId' | 'referrerEmail' | 'redeemerEmail' | 'distinctId'>,
  reward: { rewardType?: string; rewardAmount: string },
  extra?: OutcomeDetails,
): Promise<void> {
  return posthog.track({
    outcome,
    eventId: subject.eventId,
    distinctId: posthogDistinctId(subject),
    referrerEmail: subject.referrerEmail,
    redeemerEmail: subject.redeemerEmail,
    // Records begun before the reward type was stored paid gift cards.
    rewardType: reward.rewardType ?? 'gift_card',
    rewardAmount: reward.rewardAmount,
    ...(extra ? { extra } : {}),
  });
}
