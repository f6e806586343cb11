import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';

export interface EmulatorClients {
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  destroy(): void;
}

/**
 * SQS and DynamoDB clients for the local emulators (fauxqs, dynalite). They accept any
 * credentials; fixed ones keep the operator's AWS profile and session out of it.
 */
export function emulatorClients(endpoints: { sqsEndpoint: string; dynamoEndpoint: string }, region: string): EmulatorClients {
  const config = { region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  const sqs = new SQSClient({ ...config, endpoint: endpoints.sqsEndpoint });
  const dynamo = new DynamoDBClient({ ...config, endpoint: endpoints.dynamoEndpoint });
  return {
    sqs,
    dynamo,
    destroy: () => {
      sqs.destroy();
      dynamo.destroy();
    },
  };
}
