/**
 * A budget period's counter (README "Reward lifecycle"): how much is spent and by which referrals,
 * each counted at most once, exact under concurrent workers, retries, crashes between writes and
 * redrives, and bounded at any volume. The referrals counted are NOT a set in one item (a
 * DynamoDB item holds 400 KB: a set of event ids would overflow at ~11,400 referrals a month); each
 * referral has a marker item of its own, and the period's item holds only numbers.
 *
 *   budget#<period>             the total: `spentCents`, `referrals`, `version`, and `pending`, a
 *                               map with an entry per referral whose change the total holds and its
 *                               marker does not yet (a few at a time: see below). An item still
 *                               holding `eventIds`, the set of counted referrals written before
 *                               markers existed, is refused until `npm run ops -- migrate` folds it
 *                               into markers (README "Upgrading"): counting beside it could count
 *                               a referral twice or lose one.
 *   budget#<period>#<eventId>   the referral's marker: `counted`, `seq` (its changes so far), `cents`.
 *
 * One change (count, or uncount, one referral), each step ONE conditional write (dynalite has no
 * transactions, so no two items change together):
 *   1. read the total, then the marker: in that order;
 *   2. the total, conditional on the `version` read: amount, count, version + 1, and
 *      pending[eventId] = {seq, counted, cents} (past a limit it is refused instead);
 *   3. the marker: {counted, seq}, only if its seq is older (a late repeat never winds it back);
 *   4. pending[eventId] removed, only if it is still that change.
 * While pending[eventId] exists it, not the marker, is the referral's state: a crash after 2 is
 * finished (3, 4) by the next change of that referral, or by any change of the period once it is
 * a minute old (or more than 64 are pending), so the map holds the changes in flight and the
 * last minute's crashes, never the period's referrals. Why the version: an attempt that read the
 * marker before another attempt's whole 2–4 ran would otherwise apply the same change again;
 * reading the total first and writing on its version refuses exactly that attempt, which reads
 * again and finds the marker done. The cost: four or five requests per change, and concurrent
 * changes of one period take turns (a lost turn reads again).
 */
import { PermanentError, RetryableError } from '../../domain/errors';
import type { Item, LedgerTable } from './conditional';

export const budgetKey = (period: string): string => `budget#${period}`;
export const budgetMarkerKey = (period: string, eventId: string): string => `budget#${period}#${eventId}`;

/** One referral's change as the total holds it until its marker has it. */
interface PendingChange {
  seq: number;
  counted: boolean;
  cents: number;
  /** When it was applied (ms): a change still pending a minute later was left by a crash. */
  at: number;
}

export type BudgetChange = 'changed' | 'already' | 'refused';

/** Turns lost to other changes of the period before giving up (the caller is retried: SQS redelivers). */
const MAX_ROUNDS = 40;
/** A change of another referral pending longer than this was left by a crash: any change finishes it. */
const LEFT_OVER_MS = 60_000;
/** Past this many pending changes, any change finishes them all, however recent. */
const MOST_PENDING = 64;

export class BudgetCounter {
  public constructor(
    private readonly table: LedgerTable,
    private readonly now: () => number,
  ) {}

  /**
   * Counts (`counted` true) or uncounts a referral's `cents` in `period`: `changed` now,
   * `already` so (by an earlier attempt), or `refused` when counting would pass `limitCents`.
   */
  public async change(period: string, eventId: string, counted: boolean, cents: number, limitCents?: number): Promise<BudgetChange> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const total = await this.readTotal(period);
      const pending = (total?.pending ?? {}) as Record<string, PendingChange>;
      // Ours always; others when left over by a crash (or too many): in-flight ones finish themselves.
      const others = Object.keys(pending).filter((id) => id !== eventId);
      const crowded = others.length > MOST_PENDING;
      const leftOver = others.filter((id) => crowded || !(this.now() - Number(pending[id]!.at) < LEFT_OVER_MS));
      const unfinished = [...(pending[eventId] ? [eventId] : []), ...leftOver];
      if (unfinished.length > 0) {
        for (const id of unfinished) await this.finish(period, id, pending[id]!);
        continue;
      }
      const marker = await this.table.read(budgetMarkerKey(period, eventId), READ_FAILURE);
      const isCounted = marker?.counted === true;
      if (isCounted === counted) return 'already';
      if (counted && limitCents !== undefined && Number(total?.spentCents ?? 0) + cents > limitCents) return 'refused';
      const change: PendingChange = {
        seq: Number(marker?.seq ?? 0) + 1,
        counted,
        cents: counted ? cents : Number(marker?.cents ?? cents),
        at: this.now(),
      };
      if (!(await this.apply(period, total, eventId, change))) {
        // Another change of the period came first: read again, after a short, random pause.
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 5 * (round + 1))));
        continue;
      }
      await this.finish(period, eventId, change);
      return 'changed';
    }
    throw new RetryableError(`budget: ${period}'s counter kept changing under concurrent referrals; retry later`);
  }

  /** What the period's total says: exact whatever is pending (a pending change is already in it). */
  public async spent(period: string): Promise<{ cents: number; referrals: number }> {
    const total = await this.readTotal(period);
    return { cents: Number(total?.spentCents ?? 0), referrals: Number(total?.referrals ?? 0) };
  }

  /** Step 2: the total, on the version read. False when another change of the period came first. */
  private async apply(period: string, total: Item | undefined, eventId: string, change: PendingChange): Promise<boolean> {
    const version = Number(total?.version ?? 0);
    const written = await this.table.update(
      budgetKey(period),
      {
        UpdateExpression:
          `SET version = :next, updatedAt = :iso, ${total?.pending ? 'pending.#id = :change' : 'pending = :pending'} ` +
          'ADD spentCents :delta, referrals :one',
        ConditionExpression: version === 0 ? 'attribute_not_exists(version)' : 'version = :version',
        ...(total?.pending ? { ExpressionAttributeNames: { '#id': eventId } } : {}),
        ExpressionAttributeValues: {
          ':next': version + 1,
          ':iso': new Date(this.now()).toISOString(),
          ...(total?.pending ? { ':change': change } : { ':pending': { [eventId]: change } }),
          ':delta': change.counted ? change.cents : -change.cents,
          ':one': change.counted ? 1 : -1,
          ...(version === 0 ? {} : { ':version': version }),
        },
      },
      'lifecycle: could not count the budget',
    );
    return written !== undefined;
  }

  /** Steps 3 and 4, by the change's own attempt or by whoever finds it left over: both idempotent. */
  private async finish(period: string, eventId: string, change: PendingChange): Promise<void> {
    const failure = 'lifecycle: could not record the budget count';
    await this.table.update(
      budgetMarkerKey(period, eventId),
      {
        UpdateExpression: 'SET counted = :counted, seq = :seq, cents = :cents, updatedAt = :iso',
        ConditionExpression: 'attribute_not_exists(seq) OR seq < :seq',
        ExpressionAttributeValues: {
          ':counted': change.counted,
          ':seq': change.seq,
          ':cents': change.cents,
          ':iso': new Date(this.now()).toISOString(),
        },
      },
      failure,
    );
    await this.table.update(
      budgetKey(period),
      {
        UpdateExpression: 'REMOVE pending.#id',
        ConditionExpression: 'pending.#id.seq = :seq',
        ExpressionAttributeNames: { '#id': eventId },
        ExpressionAttributeValues: { ':seq': change.seq },
      },
      failure,
    );
  }

  /** The period's total; one still in the shape of the release before markers is refused (see above). */
  private async readTotal(period: string): Promise<Item | undefined> {
    const total = await this.table.read(budgetKey(period), READ_FAILURE);
    if (total?.eventIds !== undefined) {
      throw new PermanentError(
        'ledger_not_migrated',
        `budget ${period} still holds the previous release's set of counted referrals: run \`npm run ops -- migrate\`, then redrive`,
      );
    }
    return total;
  }
}

const READ_FAILURE = 'lifecycle: could not read the budget';
