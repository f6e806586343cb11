import type { Referral } from '../referral';
import type { OutcomeTracker } from '../rewards';
import { deterministicUuid } from '../../infra/uuid';

export type LifecycleEvent = 'referral reward held' | 'referral reward released' | 'referral reward revoked' | 'referral reward rejected';

/** Who and what a capture is about: the referral as queued, or as the ledger record remembers it. */
export type CaptureSubject = Pick<Referral, 'eventId' | 'referrerEmail' | 'redeemerEmail' | 'distinctId'>;

/**
 * A lifecycle capture into PostHog, shaped like the worker's outcome captures (README "Outcomes
 * in PostHog"): same properties, a uuid derived from the referral and the event so a repeat is
 * dropped by PostHog, never a code.
 */
export function captureLifecycle(
  posthog: OutcomeTracker,
  event: LifecycleEvent,
  subject: CaptureSubject,
  reward: { rewardType?: string; rewardAmount: string },
  extra: Record<string, string | number> = {},
): Promise<void> {
  return posthog.capture({
    uuid: deterministicUuid(`posthog:${event}:${subject.eventId}`),
    event,
    distinctId: subject.distinctId || subject.redeemerEmail,
    properties: {
      referral_event_id: subject.eventId,
      reward_type: reward.rewardType ?? 'gift_card',
      reward_amount: Number(reward.rewardAmount),
      referrer_email: subject.referrerEmail,
      redeemer_email: subject.redeemerEmail,
      ...extra,
    },
  });
}
