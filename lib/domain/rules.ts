import { canonicalEmail, isBlockedDomain } from './identity';
import type { Referral } from './referral';

export type RefusalReason = 'self_referral' | 'blocked_domain' | 'redeemer_already_rewarded' | 'referrer_cap_reached';

export interface ProgramRules {
  /** Rewarded referrals per referrer, ever; 0 means no cap. */
  maxRewardsPerReferrer: number;
  /** Lowercase domains whose addresses (and their subdomains' and aliases') never earn a reward (either side). */
  blockedDomains: string[];
}

/** The rules that need nothing but the referral itself; the per-person ones are claims in the ledger. */
export function staticRefusal(referral: Referral, rules: ProgramRules): RefusalReason | undefined {
  const referrer = canonicalEmail(referral.referrerEmail);
  if (referrer === canonicalEmail(referral.redeemerEmail)) return 'self_referral';
  // The PostHog person the event was captured for being the referrer means the referrer
  // redeemed their own referral under an invented redeemer email (issue #10, defect 3).
  if (referral.personEmail !== undefined && canonicalEmail(referral.personEmail) === referrer) return 'self_referral';
  if (isBlockedDomain(referral.referrerEmail, rules.blockedDomains) || isBlockedDomain(referral.redeemerEmail, rules.blockedDomains)) {
    return 'blocked_domain';
  }
  return undefined;
}

export function parseDomainList(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[,\s]+/)
    .map((domain) => domain.trim().toLowerCase().replace(/^@/, ''))
    .filter(Boolean);
}
