import { randomUUID } from 'node:crypto';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../lib/infra/aws-clients';
import { Ledger } from '../../lib/adapters/dynamodb/ledger';
import { LifecycleIndexReader } from '../../lib/adapters/dynamodb/lifecycle-index';
import { loadInfraDefinitions } from '../../local/infra';
import { createLedgerTable } from '../../local/resources';
import { describeCounterContract, describeLedgerContract } from '../support/ledger-contract';

// The DynamoDB ledger on dynalite: its conditional writes are the truth the memory twin is held to
// (tests/unit/ledger-contract.test.ts). One fresh table, as serverless.yml defines it, for this file.
const dynamo = new DynamoDBClient({
  endpoint: process.env.TEST_DYNAMODB_ENDPOINT,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});
const ddb = documentClient(dynamo);
const tableName = `referral-rewards-ledger-contract-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  await createLedgerTable(dynamo, loadInfraDefinitions(), tableName);
});

afterAll(async () => {
  await dynamo.send(new DeleteTableCommand({ TableName: tableName }));
  dynamo.destroy();
});

describeLedgerContract('DynamoDB (lib/adapters/dynamodb/ledger.ts on dynalite)', async (clock) => ({
  ledger: new Ledger(ddb, tableName, clock.now),
  index: new LifecycleIndexReader(ddb, tableName),
  seed: async (record) => {
    await ddb.send(new PutCommand({ TableName: tableName, Item: record }));
  },
}));

describeCounterContract(
  'DynamoDB (lib/adapters/dynamodb/ledger.ts, budget-counter.ts on dynalite)',
  async (clock) => new Ledger(ddb, tableName, clock.now),
);
