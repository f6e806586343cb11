import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CodeOwner, ReferralCodeStore } from '../../domain/referral-codes';
import { classify, isConditionFailure } from './conditional';
import { ReferralCodeReader, referralCodeKey, referralCodeOwnerKey } from './referral-codes';

/**
 * The referral-codes function's side: each item written once, with attribute_not_exists, so two
 * first requests for one person, or two people drawing one code, can never overwrite each other.
 * Neither item is ever updated or deleted: a code, once given, keeps its owner.
 */
export class ReferralCodeIssuer implements ReferralCodeStore {
  private readonly reader: ReferralCodeReader;

  public constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {
    this.reader = new ReferralCodeReader(client, tableName);
  }

  public codeItem(code: string): Promise<(CodeOwner & { canonical: string }) | undefined> {
    return this.reader.codeItem(code);
  }

  public codeOf(canonical: string): Promise<string | undefined> {
    return this.reader.codeOf(canonical);
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
