import { PermanentError, RetryableError } from '../domain/errors';
import type { OutcomeCapture, OutcomeTracker } from '../domain/notify-ports';
import { fetchWithTimeout, isRetryableStatus, type Fetch } from '../infra/http';
import { parseRetryAfter } from '../infra/retry';
import { deterministicUuid } from '../infra/uuid';

export interface PostHogCaptureOptions {
  host: string;
  apiKey: string;
  fetch?: Fetch;
  timeoutMs?: number;
}

/**
 * PostHog's capture endpoint, one event per call; the uuid lets PostHog drop a repeat when a lost
 * answer makes us send again.
 */
export class PostHogCapture implements OutcomeTracker {
  public constructor(private readonly options: PostHogCaptureOptions) {}

  /**
   * An outcome as the insights read it (README "Outcomes in PostHog", ops/posthog-insights):
   * `referral reward <outcome>` on the referral's person, with these property names. The uuid is
   * derived from the outcome and the referral, so a retried capture is the same event (CONTRACTS.md §4).
   */
  public async track(capture: OutcomeCapture): Promise<void> {
    const event = `referral reward ${capture.outcome}`;
    // Capture answers 200 even to an event it will drop (no distinct_id), so it is refused here.
    if (!capture.distinctId) {
      throw new PermanentError('posthog_invalid_event', 'PostHog capture needs an event name and a distinct id');
    }
    const properties: Record<string, string | number> = {
      referral_event_id: capture.eventId,
      reward_type: capture.rewardType,
      reward_amount: Number(capture.rewardAmount),
      referrer_email: capture.referrerEmail,
      redeemer_email: capture.redeemerEmail,
    };
    // The outcome's details under their property names, in a fixed order, only those it has.
    const details = capture.extra ?? {};
    if (details.reason !== undefined) properties.reason = details.reason;
    if (details.reviewDecision !== undefined) properties.review_decision = details.reviewDecision;
    if (details.releaseAt !== undefined) properties.release_at = new Date(details.releaseAt).toISOString();
    if (details.beforePayout !== undefined) properties.before_payout = details.beforePayout ? 'true' : 'false';
    const response = await fetchWithTimeout(
      this.options.fetch ?? fetch,
      `${this.options.host}/i/v0/e/`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          api_key: this.options.apiKey,
          event,
          distinct_id: capture.distinctId,
          properties,
          uuid: deterministicUuid(`posthog:${event}:${capture.eventId}`),
          timestamp: new Date().toISOString(),
        }),
        redirect: 'manual',
      },
      this.options.timeoutMs ?? 10_000,
      'PostHog capture',
    );
    await response.arrayBuffer().catch(() => undefined);
    const { ok, status } = response;
    if (ok) return;
    const answered = `PostHog capture answered ${status}`;
    if (isRetryableStatus(status)) {
      throw new RetryableError(answered, { retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) });
    }
    if (status === 401 || status === 403)
      throw new PermanentError('posthog_auth', `PostHog capture refused the project API key (${status})`);
    throw new PermanentError(`posthog_http_${status}`, answered);
  }
}
