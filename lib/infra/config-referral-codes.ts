import { Settings, type Env } from './settings';

// ── Referral codes (functions/referral-codes.ts): README "The HTTP surface" ──

/** The placeholder REFERRAL_LINK must hold. */
const CODE_PLACEHOLDER = '{code}';

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
  return Settings.load(env, (settings) => {
    const appApiKey = settings.secret('APP_API_KEY');
    const previous = settings.value('APP_API_KEY_PREVIOUS');
    if (previous) settings.secret('APP_API_KEY_PREVIOUS');
    // In AWS this function never sees the webhook's secret; locally one environment holds both, and
    // the same value would let the webhook's token ask for codes (and this key post referrals).
    const webhookSecret = settings.value('WEBHOOK_SECRET');
    if (webhookSecret) {
      settings.expect(appApiKey !== webhookSecret, 'APP_API_KEY must differ from WEBHOOK_SECRET');
      settings.expect(previous !== webhookSecret, 'APP_API_KEY_PREVIOUS must differ from WEBHOOK_SECRET');
    }
    const link = settings.required('REFERRAL_LINK');
    if (link) {
      settings.expect(link.includes(CODE_PLACEHOLDER), `REFERRAL_LINK must contain ${CODE_PLACEHOLDER}, where the code goes`);
      settings.url('REFERRAL_LINK', referralLink(link, 'CODE'));
    }
    return { appApiKey, ...(previous && { previousAppApiKey: previous }), referralLink: link, tableName: settings.required('TABLE_NAME') };
  });
}
