import type { QualificationRules } from '../domain/qualify';
import { parseDuration } from './duration';
import { DEFAULTS, Settings, type Env } from './settings';

// ── Pay on value (QUALIFY_EVENT, REVOKE_EVENT): README "Pay on value" ────────────────────────

/** The longest PostHog event name carried (its own UI caps names far below this). */
const MAX_EVENT_NAME_LENGTH = 200;

/**
 * QUALIFY_EVENT (empty: pay on redemption, as before), QUALIFY_WITHIN, QUALIFY_WHERE (a HogQL
 * boolean PostHog evaluates: the destination's filter and the catch-up query's WHERE, never us),
 * REVOKE_EVENT (empty: off) and REVOKE_PAID. Read by ingest (which events to queue), the worker
 * (what they do) and the reconciler's catch-up (which events to ask for).
 */
export function loadQualificationConfig(env: Env): QualificationRules {
  const settings = new Settings();
  return settings.done(qualificationSettings(settings, env));
}

/** REVOKE_PAID, true or false (default false): the worker's and the releaser's reading. */
export function revokePaidSetting(settings: Settings, env: Env): boolean {
  const revokePaid = env.REVOKE_PAID?.trim().toLowerCase() || 'false';
  settings.expect(['true', 'false'].includes(revokePaid), 'REVOKE_PAID must be true or false');
  return revokePaid === 'true';
}

/** Reads the pay-on-value settings into `settings`, so a function's own loader names their problems with the rest. */
export function qualificationSettings(settings: Settings, env: Env): QualificationRules {
  const qualifyEvent = env.QUALIFY_EVENT?.trim() || undefined;
  const revokeEvent = env.REVOKE_EVENT?.trim() || undefined;
  const withinMs = parseDuration(env.QUALIFY_WITHIN?.trim() || '30d');
  settings.expect(withinMs !== undefined && withinMs > 0, 'QUALIFY_WITHIN must be a duration like 7d, 30d or 720h');
  const where = env.QUALIFY_WHERE?.trim() || undefined;
  const revokePaid = revokePaidSetting(settings, env) ? 'true' : 'false';
  for (const [name, value] of [
    ['QUALIFY_EVENT', qualifyEvent],
    ['REVOKE_EVENT', revokeEvent],
  ] as const) {
    settings.expect(!value || value.length <= MAX_EVENT_NAME_LENGTH, `${name} must be at most ${MAX_EVENT_NAME_LENGTH} characters`);
  }
  settings.expect(!qualifyEvent || qualifyEvent !== revokeEvent, 'QUALIFY_EVENT and REVOKE_EVENT must name different events');
  // The referral event is read as a referral first: a person event of the same name would never arrive.
  const referralEvent = env.REFERRAL_EVENT?.trim() || DEFAULTS.REFERRAL_EVENT;
  settings.expect(
    qualifyEvent !== referralEvent && revokeEvent !== referralEvent,
    'QUALIFY_EVENT and REVOKE_EVENT must differ from REFERRAL_EVENT',
  );
  // A revoke of a paid referral has no event to come from.
  settings.expect(revokePaid === 'false' || Boolean(revokeEvent), 'REVOKE_PAID=true needs REVOKE_EVENT (the refund event)');
  settings.expect(!where || Boolean(qualifyEvent), 'QUALIFY_WHERE filters QUALIFY_EVENT: set QUALIFY_EVENT too');
  return {
    ...(qualifyEvent ? { qualifyEvent } : {}),
    withinMs: withinMs ?? 0,
    ...(where ? { where } : {}),
    ...(revokeEvent ? { revokeEvent } : {}),
    revokePaid: revokePaid === 'true',
  };
}
