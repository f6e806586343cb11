import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { PermanentError, RetryableError } from '../../domain/errors';
import {
  LeaseLostError,
  posthogDistinctId,
  type BeginInput,
  type BeginResult,
  type FinalStatus,
  type ParkedReferral,
  type LedgerPort,
  type LedgerRecord,
  type ParkedStatus,
  type Role,
} from '../../domain/ledger-port';
import type { Verdict } from '../../domain/machine';
import type { Referral } from '../../domain/referral';

// The domain's types live in the port (lib/domain/ledger-port.ts); re-exported so importers of this module keep working.
export { LeaseLostError, ROLES } from '../../domain/ledger-port';
export type { Decision, LedgerPort, LedgerRecord, LedgerStatus, Role } from '../../domain/ledger-port';

export const referralKey = (eventId: string): string => `referral#${eventId}`;
/** One item per redeemer (canonical email): which referral rewarded them. */
export const redeemerKey = (person: string): string => `redeemer#${person}`;
/** One item per referrer (canonical email): how many referrals rewarded them, and which. */
export const referrerKey = (person: string): string => `referrer#${person}`;

/**
 * Who may write a referral outside the lease-fenced steps (`begin` taking it up, `fail`
 * recording a failure): it is new, or not finished (completed or rejected) and its lease is
 * free, expired or already `:owner`'s. Values from openAndFreeValues.
 * A lifecycle-parked referral is not open either: in REVIEW or REVOKED never, HELD only once
 * its `releaseAt` (epoch ms) has passed — taking it up then is its release.
 */
const OPEN_AND_FREE =
  'attribute_not_exists(pk) OR (#status <> :completed AND #status <> :rejected AND ' +
  '#status <> :review AND #status <> :revoked AND (#status <> :held OR releaseAt <= :now) AND ' +
  '(attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :now OR leaseOwner = :owner))';

const openAndFreeValues = (now: number, owner: string) => ({
  ':completed': 'COMPLETED',
  ':rejected': 'REJECTED',
  ':held': 'HELD',
  ':review': 'REVIEW',
  ':revoked': 'REVOKED',
  ':now': now,
  ':owner': owner,
});

const isParked = (record: LedgerRecord | undefined): record is LedgerRecord & { status: ParkedStatus } =>
  record?.status === 'HELD' || record?.status === 'REVIEW' || record?.status === 'REVOKED';

export class Ledger implements LedgerPort {
  public constructor(
    // Readable so the lifecycle's writes (lib/adapters/dynamodb/lifecycle-ledger.ts) go to the same table with the same client and clock.
    public readonly client: DynamoDBDocumentClient,
    public readonly tableName: string,
    public readonly now: () => number = Date.now,
  ) {}

  /**
   * Creates the record or takes it over, in one conditional write (OPEN_AND_FREE);
   * `if_not_exists` keeps codes written by an earlier attempt, so every retry reuses them.
   */
  public async begin(referral: Referral, input: BeginInput): Promise<BeginResult> {
    const now = this.now();
    const iso = new Date(now).toISOString();
    try {
      const result = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: referralKey(referral.eventId) },
          UpdateExpression: `SET ${[
            '#status = :inProgress',
            'eventId = :eventId',
            'updatedAt = :iso',
            'leaseOwner = :owner',
            'leaseExpiresAt = :leaseUntil',
            'createdAt = if_not_exists(createdAt, :iso)',
            'referrerEmail = if_not_exists(referrerEmail, :referrerEmail)',
            'redeemerEmail = if_not_exists(redeemerEmail, :redeemerEmail)',
            'customerEmail = if_not_exists(customerEmail, :customerEmail)',
            'distinctId = if_not_exists(distinctId, :distinctId)',
            'rewardType = if_not_exists(rewardType, :rewardType)',
            'rewardAmount = if_not_exists(rewardAmount, :rewardAmount)',
            'referrerCode = if_not_exists(referrerCode, :referrerCode)',
            'redeemerCode = if_not_exists(redeemerCode, :redeemerCode)',
            'customerioEventId = if_not_exists(customerioEventId, :customerioEventId)',
          ].join(', ')} ADD attempts :one`,
          ConditionExpression: OPEN_AND_FREE,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ...openAndFreeValues(now, input.owner),
            ':inProgress': 'IN_PROGRESS',
            ':eventId': referral.eventId,
            ':iso': iso,
            ':leaseUntil': input.leaseUntil,
            ':referrerEmail': referral.referrerEmail,
            ':redeemerEmail': referral.redeemerEmail,
            ':customerEmail': referral.customerEmail,
            ':distinctId': posthogDistinctId(referral),
            ':rewardType': input.rewardType,
            ':rewardAmount': input.rewardAmount,
            ':referrerCode': input.codes.referrer,
            ':redeemerCode': input.codes.redeemer,
            ':customerioEventId': input.customerioEventId,
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { outcome: 'acquired', record: result.Attributes as LedgerRecord };
    } catch (error) {
      if (!isConditionFailure(error)) throw classify(error, 'ledger: could not start the referral');
      const record = await this.get(referral.eventId);
      if (record?.status === 'COMPLETED') return { outcome: 'completed', record };
      if (record?.status === 'REJECTED') return { outcome: 'rejected', record };
      if (isParked(record) && !(record.status === 'HELD' && Number(record.releaseAt) <= now)) return { outcome: 'parked', record };
      return { outcome: 'busy', record };
    }
  }

  /** The reward exists: its id, and the expiry it was issued with (none when it never expires). */
  public recordCard(eventId: string, owner: string, role: Role, cardId: string, expiresOn?: string): Promise<LedgerRecord> {
    return this.step(
      eventId,
      owner,
      { set: [`${role}CardId = :cardId`, `${role}CardAt = :iso`, ...(expiresOn ? [`${role}ExpiresOn = :expiresOn`] : [])] },
      { ':cardId': cardId, ...(expiresOn ? { ':expiresOn': expiresOn } : {}) },
    );
  }

  /** A code Shopify says belongs to someone else's card: swap it, but only if it is still the one we tried. */
  public replaceCode(eventId: string, owner: string, role: Role, oldCode: string, newCode: string): Promise<LedgerRecord> {
    return this.step(
      eventId,
      owner,
      { set: [`${role}Code = :newCode`], add: 'codeCollisions :one', condition: `${role}Code = :oldCode` },
      { ':newCode': newCode, ':oldCode': oldCode, ':one': 1 },
    );
  }

  /** A sighting concerns one code: fenced on it too, so a sighting never lands on a code already replaced. */
  public recordTakenSeen(eventId: string, owner: string, role: Role, code: string): Promise<LedgerRecord> {
    return this.step(
      eventId,
      owner,
      { set: [`${role}TakenSeenAt = :iso`, `${role}TakenSeenCode = :code`], condition: `${role}Code = :code` },
      { ':code': code },
    );
  }

  /**
   * With `finish`, the referral ends in the same write: the last outside call is then also the
   * last ledger step, one sequential DynamoDB round trip and one WCU fewer per referral.
   */
  public recordCustomerIo(eventId: string, owner: string, finish?: FinalStatus): Promise<LedgerRecord> {
    return this.step(eventId, owner, { set: ['customerioAt = :iso'], finish }, {});
  }

  public recordPostHog(eventId: string, owner: string, finish?: FinalStatus): Promise<LedgerRecord> {
    return this.step(eventId, owner, { set: ['posthogAt = :iso'], finish }, {});
  }

  /**
   * The verdict, in the one write that decides it: a pay is stored before the first Shopify call
   * (gatePassedAt), a hold or review parks the record (status, the sparse `lifecycle` index's
   * keys, the message the releaser hands back) and frees the lease in the same write.
   */
  public decide(eventId: string, owner: string, verdict: Verdict, parked?: ParkedReferral): Promise<LedgerRecord> {
    if (verdict.kind === 'reject') return this.step(eventId, owner, { set: ['decision = :decision', 'rejectionReason = :reason'] }, { ':decision': 'REJECTED', ':reason': verdict.reason });
    if (verdict.kind === 'pay') return this.step(eventId, owner, { set: ['decision = :decision', 'gatePassedAt = :iso'] }, { ':decision': 'ACCEPTED' });
    if (!parked) throw new PermanentError('ledger_incomplete', `ledger: a ${verdict.kind} verdict for ${eventId} needs the referral's message`);
    const held = verdict.kind === 'hold';
    return this.step(
      eventId,
      owner,
      {
        set: [
          'decision = :decision',
          '#status = :status',
          'lifecycleQueue = :queue',
          'lifecycleAt = :at',
          'parkedMessage = :message',
          'parkedAt = :iso',
          'budgetCents = :cents',
          ...(held ? ['releaseAt = :at', 'heldAt = :iso'] : ['reviewReasons = :reasons', 'reviewSince = :iso', 'holdUntil = :holdUntil']),
        ],
        remove: LEASE,
      },
      {
        ':decision': 'ACCEPTED',
        ':status': held ? 'HELD' : 'REVIEW',
        ':queue': held ? 'held' : 'review',
        ':at': held ? verdict.until : this.now(),
        ':message': parked.message,
        ':cents': parked.budgetCents,
        ...(held ? {} : { ':reasons': verdict.reasons, ':holdUntil': verdict.holdUntil }),
      },
    );
  }

  /** The end of a referral whose last step was done by an earlier attempt, or a refusal without a capture. */
  public finish(eventId: string, owner: string, status: FinalStatus): Promise<LedgerRecord> {
    return this.step(eventId, owner, { set: [], finish: status }, {});
  }

  /**
   * Claims "this redeemer's reward" for this referral. The condition lets the same referral
   * claim again (retries) and refuses every other one, so two referrals racing for the same
   * person cannot both win.
   */
  public claimRedeemer(person: string, eventId: string, staleHolder?: string): Promise<boolean> {
    // `staleHolder`: a refused referral's leftover claim (lib/domain/claims.ts), taken over only if it is still that one's.
    return this.tryUpdate(
      {
        Key: { pk: redeemerKey(person) },
        UpdateExpression: 'SET eventId = :eventId, claimedAt = :iso',
        ConditionExpression: `attribute_not_exists(eventId) OR eventId = :eventId${staleHolder ? ' OR eventId = :stale' : ''}`,
        ExpressionAttributeValues: {
          ':eventId': eventId,
          ':iso': new Date(this.now()).toISOString(),
          ...(staleHolder ? { ':stale': staleHolder } : {}),
        },
      },
      'ledger: could not claim the redeemer',
    );
  }

  /** Gives the redeemer back when this referral is refused for another reason. Only our own claim is removed. */
  public async releaseRedeemer(person: string, eventId: string): Promise<void> {
    await this.tryUpdate(
      {
        Key: { pk: redeemerKey(person) },
        UpdateExpression: 'REMOVE eventId, claimedAt SET releasedAt = :iso',
        ConditionExpression: 'eventId = :eventId',
        ExpressionAttributeValues: { ':eventId': eventId, ':iso': new Date(this.now()).toISOString() },
      },
      'ledger: could not release the redeemer',
    );
  }

  /**
   * Takes one of the referrer's `cap` reward slots, counting each referral once: the counter
   * and the set of counted referrals change in one conditional write, so concurrent referrals
   * cannot overshoot the cap and a retry of a counted referral is not counted again. The set holds
   * at most `cap` ids (one enters only below the cap, and leaves when its referral is refused), and
   * MAX_REWARDS_PER_REFERRER is at most 1000 (lib/infra/config.ts): ~40 KB, far inside an item's 400 KB.
   */
  public async claimReferrerSlot(person: string, eventId: string, cap: number): Promise<boolean> {
    const counted = await this.tryUpdate(
      {
        Key: { pk: referrerKey(person) },
        UpdateExpression: 'ADD rewardCount :one, eventIds :ids SET updatedAt = :iso',
        ConditionExpression: 'attribute_not_exists(pk) OR (rewardCount < :cap AND NOT contains(eventIds, :eventId))',
        ExpressionAttributeValues: {
          ':one': 1,
          ':ids': new Set([eventId]),
          ':cap': cap,
          ':eventId': eventId,
          ':iso': new Date(this.now()).toISOString(),
        },
      },
      'ledger: could not count the referrer',
    );
    if (counted) return true;
    // Refused: either the cap is reached, or this referral was counted by an earlier attempt.
    const item = await this.getItem(referrerKey(person));
    return item?.eventIds instanceof Set && item.eventIds.has(eventId);
  }

  /** Gives a referrer's slot back when this referral is refused: only if this referral holds it. */
  public async releaseReferrerSlot(person: string, eventId: string): Promise<void> {
    await this.tryUpdate(
      {
        Key: { pk: referrerKey(person) },
        UpdateExpression: 'DELETE eventIds :ids ADD rewardCount :minusOne SET updatedAt = :iso',
        ConditionExpression: 'contains(eventIds, :eventId)',
        ExpressionAttributeValues: { ':ids': new Set([eventId]), ':minusOne': -1, ':eventId': eventId, ':iso': new Date(this.now()).toISOString() },
      },
      'ledger: could not release the referrer slot',
    );
  }

  /** The referral holding a redeemer's claim, if any. */
  public async redeemerHolder(person: string): Promise<string | undefined> {
    const item = await this.getItem(redeemerKey(person));
    return typeof item?.eventId === 'string' ? item.eventId : undefined;
  }

  /** The referrals holding a referrer's slots. */
  public async referrerSlotHolders(person: string): Promise<string[]> {
    const item = await this.getItem(referrerKey(person));
    return item?.eventIds instanceof Set ? [...(item.eventIds as Set<string>)] : [];
  }

  /**
   * A permanent failure (or retries exhausted): the message is on its way to the DLQ, and a
   * redrive may take the record up again. Unlike the steps this needs no lease of ours: a
   * config error can fail a referral before it ever began. It never overwrites a completed
   * record or one another worker is actively holding.
   */
  public fail(eventId: string, owner: string, reason: string, message: string): Promise<boolean> {
    const now = this.now();
    return this.tryUpdate(
      {
        Key: { pk: referralKey(eventId) },
        UpdateExpression:
          'SET #status = :failed, eventId = :eventId, failureReason = :reason, lastError = :message, ' +
          'failedAt = :iso, updatedAt = :iso, createdAt = if_not_exists(createdAt, :iso) ' +
          // Out of the lifecycle index too (a released referral that failed before markReleased):
          // a FAILED record waits for a redrive, not the releaser, and must not crowd its reads.
          // Never a parked one: OPEN_AND_FREE refuses HELD and REVIEW records.
          'REMOVE leaseOwner, leaseExpiresAt, lifecycleQueue, lifecycleAt',
        ConditionExpression: OPEN_AND_FREE,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ...openAndFreeValues(now, owner),
          ':failed': 'FAILED',
          ':eventId': eventId,
          ':reason': reason,
          ':message': message,
          ':iso': new Date(now).toISOString(),
        },
      },
      'ledger: could not record the failure',
    );
  }

  /** A retryable failure: note why and free the lease so the next delivery need not wait for it to expire. */
  public async release(eventId: string, owner: string, message: string): Promise<void> {
    try {
      await this.step(eventId, owner, { set: ['lastError = :message'], remove: LEASE }, { ':message': message });
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
    }
  }

  public async get(eventId: string): Promise<LedgerRecord | undefined> {
    return (await this.getItem(referralKey(eventId))) as LedgerRecord | undefined;
  }

  /** One conditional update: true if it was written, false if its condition refused it. */
  private async tryUpdate(input: Omit<UpdateCommandInput, 'TableName'>, failure: string): Promise<boolean> {
    return (await conditionalUpdate(this.client, this.tableName, input, failure)) !== undefined;
  }

  private getItem(pk: string): Promise<Record<string, unknown> | undefined> {
    return readItem(this.client, this.tableName, pk, 'ledger: could not read the referral');
  }

  /**
   * Every step after `begin` is fenced on the lease: if another worker took the referral over
   * (ours expired), our write fails instead of racing theirs, and we stop. With `finish` the
   * step also ends the referral: final status, its time, and no lease.
   */
  private async step(eventId: string, owner: string, clauses: StepClauses, values: Record<string, unknown>): Promise<LedgerRecord> {
    const { finish } = clauses;
    const finishing = finish ? ['#status = :final', `${finish === 'COMPLETED' ? 'completedAt' : 'rejectedAt'} = :iso`] : [];
    const removing = [...(clauses.remove ?? []), ...(finish ? LEASE : [])];
    const set = ['updatedAt = :iso', ...clauses.set, ...finishing].join(', ');
    const remove = removing.length > 0 ? ` REMOVE ${removing.join(', ')}` : '';
    const add = clauses.add ? ` ADD ${clauses.add}` : '';
    try {
      const result = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: referralKey(eventId) },
          UpdateExpression: `SET ${set}${remove}${add}`,
          ConditionExpression: ['leaseOwner = :owner', clauses.condition].filter(Boolean).join(' AND '),
          ExpressionAttributeNames: finish || set.includes('#status') ? { '#status': 'status' } : undefined,
          ExpressionAttributeValues: {
            ...values,
            ...(finish ? { ':final': finish } : {}),
            ':owner': owner,
            ':iso': new Date(this.now()).toISOString(),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return result.Attributes as LedgerRecord;
    } catch (error) {
      if (isConditionFailure(error)) throw new LeaseLostError(eventId);
      throw classify(error, 'ledger: could not record progress');
    }
  }
}

interface StepClauses {
  set: string[];
  remove?: string[];
  add?: string;
  condition?: string;
  /** Ends the referral in this same write. */
  finish?: FinalStatus;
}

const LEASE = ['leaseOwner', 'leaseExpiresAt'];

/** One item of the ledger table, read consistently (a claim or a lease just written must be seen). */
/** One conditional update: the new attributes (or {} without ReturnValues), undefined if its condition refused it. */
export async function conditionalUpdate(
  client: DynamoDBDocumentClient,
  tableName: string,
  input: Omit<UpdateCommandInput, 'TableName'>,
  failure: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    const result = await client.send(new UpdateCommand({ TableName: tableName, ...input }));
    return result.Attributes ?? {};
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw classify(error, failure);
  }
}

export async function readItem(client: DynamoDBDocumentClient, tableName: string, pk: string, failure: string): Promise<Record<string, unknown> | undefined> {
  try {
    const result = await client.send(new GetCommand({ TableName: tableName, Key: { pk }, ConsistentRead: true }));
    return result.Item;
  } catch (error) {
    throw classify(error, failure);
  }
}

export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'
  );
}

/**
 * A missing table or a denied action will not heal by retrying: dead-letter with the reason so
 * the operator fixes the deployment and redrives. Throttling, timeouts and 5xx are transient.
 */
export function classify(error: unknown, message: string): RetryableError | PermanentError {
  if (error instanceof RetryableError || error instanceof PermanentError) return error;
  const name = (error as { name?: string } | undefined)?.name ?? '';
  if (PERMANENT_AWS_ERRORS.has(name)) return new PermanentError('ledger_unavailable', `${message} (${name})`, { cause: error });
  return new RetryableError(message, { cause: error });
}

const PERMANENT_AWS_ERRORS = new Set(['ResourceNotFoundException', 'AccessDeniedException', 'ValidationException', 'UnrecognizedClientException']);
