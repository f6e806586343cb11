import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CodeOwner, ReferralCodeStore } from '../../domain/referral-codes';
import { classify, isConditionFailure } from './ledger';
import { ReferralCodeReader, referralCodeKey, referralCodeOwnerKey } from './referral-codes';

/**
 * The referral-codes function's side: each item written once, with attribute_not_exists, so two
 * first requests for one person, or two people drawing one code, can never overwrite each other.
 * Neither item is ever updated or deleted: a code, once given, keeps its owner.
 */
export class ReferralCodeIssuer extends ReferralCodeReader implements ReferralCodeStore {
  public constructor(
    client: DynamoDBDocumentClient,
    tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    super(client, tableName);
  }

  public async putCodeItem(code: string, owner: CodeOwner & { canonical: string }): Promise<boolean> {
    return this.putNew({
      pk: referralCodeKey(code),
      code,
      email: owner.email,
      canonical: owner.canonical,
      distinctId: owner.distinctId,
      createdAt: new Date(this.now()).toISOString(),
    });
  }

  public async putOwnerItem(canonical: string, code: string): Promise<boolean> {
    return this.putNew({ pk: referralCodeOwnerKey(canonical), code, createdAt: new Date(this.now()).toISOString() });
  }

  private async putNew(item: Record<string, unknown>): Promise<boolean> {
    try {
      await this.client.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw classify(error, 'ledger: could not write a referral code');
    }
  }
}
