import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * The one DynamoDB document client shape every function, the local stack, the test harness, the
 * bench and ops use. removeUndefinedValues: the ledger writes records with optional fields
 * (expiry, lifecycle keys) and the marshaller otherwise throws on an undefined one. Without a
 * client: the deployed one (region and credentials from the Lambda environment).
 */
export function documentClient(dynamo: DynamoDBClient = new DynamoDBClient({})): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
}
