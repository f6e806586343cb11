import type { CodeOwner, ReferralCodeLookup } from '../../domain/referral-codes';
import type { LedgerTable } from './conditional';

/** The code items' partition keys start with these, and only these: the referral-codes function's
 * role may touch no other item of the ledger table (serverless.yml, ReferralCodesRole's
 * dynamodb:LeadingKeys condition). */
export const REFERRAL_CODE_KEY_PREFIXES = ['refcode#', 'refcode-owner#'] as const;

/** A code item: who the code was given to (lib/domain/referral-codes.ts). */
export const referralCodeKey = (code: string): string => `${REFERRAL_CODE_KEY_PREFIXES[0]}${code}`;
/** A referrer's item (canonical email): their one code. */
export const referralCodeOwnerKey = (canonical: string): string => `${REFERRAL_CODE_KEY_PREFIXES[1]}${canonical}`;

/**
 * The worker's side of the code items: reads only (GetItem, consistent: a code handed out a
 * moment ago must resolve). The writes are lib/adapters/dynamodb/referral-code-issuer.ts's, in the
 * referral-codes function, so the worker's role gains no PutItem.
 */
export class ReferralCodeReader implements ReferralCodeLookup {
  public constructor(private readonly table: LedgerTable) {}

  public async codeItem(code: string): Promise<(CodeOwner & { canonical: string }) | undefined> {
    const item = await this.table.read(referralCodeKey(code), 'ledger: could not read a referral code');
    if (!item || typeof item.email !== 'string' || typeof item.canonical !== 'string') return undefined;
    return {
      email: item.email,
      canonical: item.canonical,
      ...(typeof item.distinctId === 'string' && item.distinctId !== '' ? { distinctId: item.distinctId } : {}),
    };
  }

  public async codeOf(canonical: string): Promise<string | undefined> {
    const item = await this.table.read(referralCodeOwnerKey(canonical), "ledger: could not read a referrer's code");
    return typeof item?.code === 'string' ? item.code : undefined;
  }
}
