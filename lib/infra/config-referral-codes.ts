import { MIN_SECRET_LENGTH, Settings, type Env } from './settings';

// ── Referral codes (functions/referral-codes.ts; the worker's REQUIRE_REFERRAL_CODE): README "The HTTP surface" ──

/** APP_API_KEY's least length: the one every secret we choose has (lib/infra/settings.ts). */
export const MIN_APP_API_KEY_LENGTH = MIN_SECRET_LENGTH;
/** The placeholder REFERRAL_LINK must hold. */
export const CODE_PLACEHOLDER = '{code}';

export interface ReferralCodesConfig {
  /** The app backend's bearer token for POST /referral-codes; never the webhook's. */
  appApiKey: string;
  /** APP_API_KEY_PREVIOUS: also accepted, only while the key is being rotated (docs/OPERATIONS.md). */
  previousAppApiKey?: string;
  /** e.g. https://app.example.com/signup?ref={code} */
  referralLink: string;
  tableName: string;
}

/** The link a referrer shares: REFERRAL_LINK with its `{code}` filled in (every occurrence). */
export function referralLink(template: string, code: string): string {
  return template.split(CODE_PLACEHOLDER).join(encodeURIComponent(code));
}

export function loadReferralCodesConfig(env: Env): ReferralCodesConfig {
  const settings = new Settings();
  const appApiKey = settings.secret('APP_API_KEY', env.APP_API_KEY, MIN_APP_API_KEY_LENGTH);
  const previous = env.APP_API_KEY_PREVIOUS?.trim() || undefined;
  if (previous) settings.secret('APP_API_KEY_PREVIOUS', previous, MIN_APP_API_KEY_LENGTH);
  // In AWS this function never sees the webhook's secret; locally one environment holds both, and
  // the same value would let the webhook's token ask for codes (and this key post referrals).
  const webhookSecret = env.WEBHOOK_SECRET?.trim();
  if (webhookSecret) {
    settings.expect(appApiKey !== webhookSecret, 'APP_API_KEY must differ from WEBHOOK_SECRET');
    settings.expect(previous !== webhookSecret, 'APP_API_KEY_PREVIOUS must differ from WEBHOOK_SECRET');
  }
  const link = settings.required('REFERRAL_LINK', env.REFERRAL_LINK);
  if (link) {
    settings.expect(link.includes(CODE_PLACEHOLDER), `REFERRAL_LINK must contain ${CODE_PLACEHOLDER}, where the code goes`);
    settings.url(referralLink(link, 'CODE'), 'REFERRAL_LINK');
  }
  return settings.done({
    appApiKey,
    ...(previous ? { previousAppApiKey: previous } : {}),
    referralLink: link,
    tableName: settings.required('TABLE_NAME', env.TABLE_NAME),
  });
}

/** The worker's REQUIRE_REFERRAL_CODE: `true` refuses a referral that names no code (`referral_code_required`). */
export function requireReferralCode(settings: Settings, env: Env): boolean {
  const value = env.REQUIRE_REFERRAL_CODE?.trim().toLowerCase() || 'false';
  settings.expect(['true', 'false'].includes(value), 'REQUIRE_REFERRAL_CODE must be true or false');
  return value === 'true';
}
