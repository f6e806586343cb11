import { RetryableError } from '../../lib/domain/errors';
import type { Role } from '../../lib/domain/ledger-port';
import { parseGiftCardNote, type RewardIssuer, type RewardLookup } from '../../lib/domain/rewards';

export type CreateInput = Parameters<RewardIssuer['createGiftCard']>[0];
export type CreateResult = Awaited<ReturnType<RewardIssuer['createGiftCard']>>;
export interface StoredCard {
  id: string;
  note: string | null;
}

/** What a create throws instead of answering: always, or only for the inputs it returns an error for. */
export type CreateFault = Error | ((input: CreateInput) => Error | undefined);

/**
 * The one stateful shop for unit tests, at the issuer's level (lib/domain/rewards.ts RewardIssuer):
 * cards kept by code, case-insensitively as Shopify does, so a code is used once (`taken` on a
 * collision); a look-up by code finds the card with its note. Faults are injectable:
 * - `fault(error)`: creates throw it (a 5xx, a 401) before anything is created; `times` limits it;
 * - `loseResponses(match, n)`: the next n creates it selects are made but their answer is lost (the card exists,
 *   the caller sees a RetryableError), as when a connection drops after Shopify's write;
 * - `lookupNoise`: strangers' cards sharing the last characters, returned with every look-up
 *   (Shopify's search matches on the last characters: lib/adapters/shopify/gift-cards.ts); with `lookupIncomplete`
 *   they fill the page and the card asked for is beyond it (`complete: false`);
 * - `unsearchable`: codes (upper case) whose card exists but is not in look-ups yet (Shopify's search index lags its writes);
 * - `onCreate`: replaces a create's behaviour; it gets `issue`, the normal one, to call when the
 *   card is to be really created (for ordering and races).
 * Every create and look-up is recorded, in order, for assertions.
 */
export class FakeShop implements RewardIssuer {
  public readonly cards = new Map<string, StoredCard>();
  public readonly creates: CreateInput[] = [];
  public readonly finds: string[] = [];
  public onCreate?: (input: CreateInput, issue: (input: CreateInput) => CreateResult) => Promise<CreateResult>;
  public lookupNoise: StoredCard[] = [];
  public lookupIncomplete = false;
  public readonly unsearchable = new Set<string>();
  private readonly faults: { fault: CreateFault; times: number }[] = [];
  private readonly lostResponses: { match: (input: CreateInput) => boolean; times: number }[] = [];
  private nextId = 1;

  public async createGiftCard(input: CreateInput): Promise<CreateResult> {
    this.creates.push(input);
    const error = this.nextFault(input);
    if (error) throw error;
    const result = await (this.onCreate ? this.onCreate(input, (i) => this.issue(i)) : this.issue(input));
    const lost = this.lostResponses.find((entry) => entry.times > 0 && entry.match(input));
    if (lost) {
      lost.times--;
      throw new RetryableError('fake shop: no answer (the connection dropped after the write)');
    }
    return result;
  }

  public async findGiftCardByCode(code: string): Promise<RewardLookup> {
    this.finds.push(code);
    // A full page (lookupIncomplete) is all strangers: the card asked for is on a page not read.
    if (this.lookupIncomplete) return { matches: [...this.lookupNoise], complete: false };
    const card = this.unsearchable.has(code.toUpperCase()) ? undefined : this.cards.get(code.toUpperCase());
    return { matches: [...this.lookupNoise, ...(card ? [card] : [])], complete: true };
  }

  /** Creates the card unless its code is in use, in any case. */
  public issue(input: CreateInput): CreateResult {
    const key = input.code.toUpperCase();
    if (this.cards.has(key)) return { status: 'taken' };
    const id = `gid://shopify/GiftCard/${this.nextId++}`;
    this.cards.set(key, { id, note: input.note });
    return { status: 'created', id };
  }

  /** A card that already exists (someone else's, or an earlier attempt's whose answer was lost). */
  public seedCard(code: string, card: StoredCard): void {
    this.cards.set(code.toUpperCase(), card);
  }

  public card(code: string): StoredCard | undefined {
    return this.cards.get(code.toUpperCase());
  }

  /** Creates throw `fault` (for `times` creates, else until cleared) before anything is created. */
  public fault(fault: CreateFault, times = Number.POSITIVE_INFINITY): void {
    this.faults.push({ fault, times });
  }

  /** The next `times` creates `match` selects are made, then their answer is lost. */
  public loseResponses(match: (input: CreateInput) => boolean = () => true, times = 1): void {
    this.lostResponses.push({ match, times });
  }

  /** The codes tried for one role (read from the note), in order. */
  public codesFor(role: Role): string[] {
    return this.creates.filter((input) => roleOf(input) === role).map((input) => input.code);
  }

  private nextFault(input: CreateInput): Error | undefined {
    for (const entry of this.faults) {
      if (entry.times <= 0) continue;
      const error = typeof entry.fault === 'function' ? entry.fault(input) : entry.fault;
      if (!error) continue;
      entry.times--;
      return error;
    }
    return undefined;
  }
}

export const roleOf = (input: CreateInput): Role => parseGiftCardNote(input.note)?.role ?? 'redeemer';
