import { canonicalEmail, emailDomain } from './identity';
import type { Referral } from './referral';

export type RefusalReason = 'self_referral' | 'blocked_domain' | 'redeemer_already_rewarded' | 'referrer_cap_reached';

export interface ProgramRules {
  /** Rewarded referrals per referrer, ever; 0 means no cap. */
  maxRewardsPerReferrer: number;
  /** Lowercase domains whose addresses never earn a reward (either side). */
  blockedDomains: string[];
}

/** The rules that need nothing but the referral itself; the per-person ones are claims in the ledger. */
export function staticRefusal(referral: Referral, rules: ProgramRules): RefusalReason | undefined {
  if (canonicalEmail(referral.referrerEmail) === canonicalEmail(referral.redeemerEmail)) return 'self_referral';
  const blocked = new Set(rules.blockedDomains);
  if (blocked.has(emailDomain(referral.referrerEmail)) || blocked.has(emailDomain(referral.redeemerEmail))) {
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
