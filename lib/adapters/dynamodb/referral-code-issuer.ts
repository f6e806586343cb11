import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CodeOwner, ReferralCodeStore } from '../../domain/referral-codes';
import { classify, isConditionFailure, ledgerTable } from './conditional';
import { ReferralCodeReader, referralCodeKey, referralCodeOwnerKey } from './referral-codes';

/**
 * The referral-codes function's side: each item written once, with attribute_not_exists, so two
 * first requests for one person, or two people drawing one code, can never overwrite each other.
 * Neither item is ever updated or deleted: a code, once given, keeps its owner.
 */
export class ReferralCodeIssuer extends ReferralCodeReader implements ReferralCodeStore {
  public constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    super(ledgerTable(client, tableName));
  }

  public async putCodeItem(code: string, owner: CodeOwner & { canonical: string }): Promise<boolean> {
    const { email, canonical, distinctId } = owner;
    return this.putNew({ pk: referralCodeKey(code), code, email, canonical, distinctId });
  }

  public async putOwnerItem(canonical: string, code: string): Promise<boolean> {
    return this.putNew({ pk: referralCodeOwnerKey(canonical), code });
  }

  private async putNew(item: Record<string, unknown>): Promise<boolean> {
    const Item = { ...item, createdAt: new Date(this.now()).toISOString() };
    try {
      await this.client.send(new PutCommand({ TableName: this.tableName, Item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw classify(error, 'ledger: could not write a referral code');
    }
  }
}
