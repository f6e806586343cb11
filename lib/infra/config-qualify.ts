import type { QualificationRules } from '../domain/qualify';
import { Settings, type Env } from './settings';

// ── Pay on value (QUALIFY_EVENT, REVOKE_EVENT): README "Pay on value" ────────────────────────

/** The longest PostHog event name carried (its own UI caps names far below this). */
const MAX_EVENT_NAME_LENGTH = 200;

/**
 * QUALIFY_EVENT (empty: pay on redemption), QUALIFY_WITHIN, QUALIFY_WHERE (a HogQL boolean PostHog
 * evaluates: the destination's filter and the catch-up query's WHERE, never us), REVOKE_EVENT
 * (empty: off) and REVOKE_PAID. Read by ingest (which events to queue), the worker (what they do)
 * and the reconciler's catch-up (which events to ask for).
 */
export const loadQualificationConfig = (env: Env): QualificationRules => Settings.load(env, qualificationSettings);

/** Reads the pay-on-value settings into `settings`, so a function's own loader names their problems with the rest. */
export function qualificationSettings(settings: Settings): QualificationRules {
  const qualifyEvent = settings.value('QUALIFY_EVENT');
  const revokeEvent = settings.value('REVOKE_EVENT');
  const withinMs = settings.duration('QUALIFY_WITHIN', '7d, 30d or 720h');
  const where = settings.value('QUALIFY_WHERE');
  const revokePaid = settings.flag('REVOKE_PAID');
  for (const [name, value] of Object.entries({ QUALIFY_EVENT: qualifyEvent, REVOKE_EVENT: revokeEvent })) {
    settings.expect(!value || value.length <= MAX_EVENT_NAME_LENGTH, `${name} must be at most ${MAX_EVENT_NAME_LENGTH} characters`);
  }
  settings.expect(!qualifyEvent || qualifyEvent !== revokeEvent, 'QUALIFY_EVENT and REVOKE_EVENT must name different events');
  // The referral event is read as a referral first: a person event of the same name would never arrive.
  const referralEvent = settings.value('REFERRAL_EVENT');
  settings.expect(
    qualifyEvent !== referralEvent && revokeEvent !== referralEvent,
    'QUALIFY_EVENT and REVOKE_EVENT must differ from REFERRAL_EVENT',
  );
  // A revoke of a paid referral has no event to come from.
  settings.expect(!revokePaid || Boolean(revokeEvent), 'REVOKE_PAID=true needs REVOKE_EVENT (the refund event)');
  settings.expect(!where || Boolean(qualifyEvent), 'QUALIFY_WHERE filters QUALIFY_EVENT: set QUALIFY_EVENT too');
  return { ...(qualifyEvent && { qualifyEvent }), withinMs, ...(where && { where }), ...(revokeEvent && { revokeEvent }), revokePaid };
}
