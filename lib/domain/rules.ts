import { canonicalEmail, isBlockedDomain, normalise } from './identity';
import type { Referral } from './referral';
import { verifyReferral } from './vouch';

export type RefusalReason =
  | 'unsigned_referral'
  | 'bad_referral_signature'
  | 'self_referral'
  | 'blocked_domain'
  | 'redeemer_already_rewarded'
  | 'referrer_cap_reached';

/**
 * REFERRAL_SIGNATURES: `required` (the default), with the key the app's backend signs referrals
 * with (REFERRAL_SIGNING_KEY) and, while it is being rotated, the key it replaces
 * (REFERRAL_SIGNING_KEY_PREVIOUS), or `off`, which pays unsigned referrals as before signatures existed.
 */
export type ReferralSignatures = { mode: 'required'; key: string; previousKey?: string } | { mode: 'off' };

export interface ProgramRules {
  /** Rewarded referrals per referrer, ever; 0 means no cap. */
  maxRewardsPerReferrer: number;
  /** Lowercase domains whose addresses (and their subdomains' and aliases') never earn a reward (either side). */
  blockedDomains: string[];
  /** Whether a referral must carry the app backend's signature (lib/domain/vouch.ts) to earn anything. */
  referralSignatures: ReferralSignatures;
}

/**
 * The rules that need nothing but the referral itself; the per-person ones are claims in the ledger.
 * The signature comes first: a referral the app did not vouch for is judged by no other rule, and
 * since this runs before any claim, it never takes one, so a forged event naming a real redeemer
 * cannot use up that person's reward.
 */
export function staticRefusal(referral: Referral, rules: ProgramRules): RefusalReason | undefined {
  const unvouched = vouchRefusal(referral, rules.referralSignatures);
  if (unvouched) return unvouched;
  const referrer = canonicalEmail(referral.referrerEmail);
  if (referrer === canonicalEmail(referral.redeemerEmail)) return 'self_referral';
  // The PostHog person the event was captured for being the referrer means the referrer
  // redeemed their own referral under an invented redeemer email: a self-referral all the same.
  if (referral.personEmail !== undefined && canonicalEmail(referral.personEmail) === referrer) return 'self_referral';
  if (isBlockedDomain(referral.referrerEmail, rules.blockedDomains) || isBlockedDomain(referral.redeemerEmail, rules.blockedDomains)) {
    return 'blocked_domain';
  }
  return undefined;
}

/** Why the referral's signature does not vouch for it, or undefined when it does or signatures are off. */
export function vouchRefusal(referral: Referral, signatures: ReferralSignatures): RefusalReason | undefined {
  if (signatures.mode === 'off') return undefined;
  const verdict = verifyReferral(signatures.key, referral, referral.referralSignature, signatures.previousKey);
  return verdict === 'vouched' ? undefined : verdict === 'unsigned' ? 'unsigned_referral' : 'bad_referral_signature';
}

export function parseDomainList(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[,\s]+/)
    .map((domain) => normalise(domain).replace(/^@/, ''))
    .filter(Boolean);
}
