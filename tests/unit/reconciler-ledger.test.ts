import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { RECONCILER_ATTRIBUTES, referralsInLedger } from '../../lib/adapters/dynamodb/reconciler-ledger';

const ddbMock = mockClient(DynamoDBDocumentClient);

describe('referralsInLedger', () => {
  beforeEach(() => ddbMock.reset());

  it('asks the ledger for the key of each record only, the one attribute its IAM role may read', async () => {
    // Prepare
    ddbMock.on(BatchGetCommand).resolves({ Responses: { ledger: [{ pk: 'referral#e1' }] } });
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));

    // Act
    const found = await referralsInLedger(client, 'ledger', ['e1', 'e2']);

    // Assess
    expect([...found]).toEqual(['e1']);
    const request = ddbMock.commandCalls(BatchGetCommand)[0]!.args[0].input.RequestItems!.ledger!;
    expect(request.ProjectionExpression).toBe('pk');
    expect(RECONCILER_ATTRIBUTES).toEqual(['pk']);
  });
});
