// Plain ESM on purpose: fauxqs ships ESM only, and both the local stack (tsx) and jest's
// globalSetup (native import) can load this file as it is.
import dynalite from 'dynalite';
import { startFauxqs } from 'fauxqs';

/**
 * Starts the two AWS emulators in this process, on loopback: dynalite (DynamoDB) and fauxqs
 * (SQS with visibility timeouts, long polling and redrive to a DLQ). Port 0 picks free ports.
 */
export async function startEmulators({ sqsPort = 0, dynamoPort = 0 } = {}) {
  const sqs = await startFauxqs({ port: sqsPort, host: '127.0.0.1', logger: false });
  const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise((resolve, reject) => {
    dynamo.once('error', reject);
    dynamo.listen(dynamoPort, '127.0.0.1', resolve);
  });
  return {
    sqsEndpoint: sqs.address,
    dynamoEndpoint: `http://127.0.0.1:${dynamo.address().port}`,
    async stop() {
      await sqs.stop();
      await new Promise((resolve) => dynamo.close(resolve));
    },
  };
}
