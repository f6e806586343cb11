// Plain ESM on purpose: fauxqs ships ESM only, and both the local stack (tsx) and jest's
// globalSetup (native import) can load this file as it is.
import dynalite from 'dynalite';
import { startFauxqs } from 'fauxqs';

/**
 * Starts the two AWS emulators in this process, on loopback: dynalite (DynamoDB) and fauxqs
 * (SQS with visibility timeouts, long polling and redrive to a DLQ), reached on 127.0.0.1. Port 0 picks free ports.
 */
export async function startEmulators({ sqsPort = 0, dynamoPort = 0 } = {}) {
  // fauxqs names queue URLs sqs.<region>.<host>. Its default host, localhost, gives
  // sqs.us-east-1.localhost, which does not resolve here, and the SDK sends to the queue URL's host.
  // With 127.0.0.1 the URL does not parse, so the SDK keeps the configured 127.0.0.1 endpoint
  // (warning once per call; local/start.ts mutes exactly that warning). fauxqs itself listens on
  // all interfaces (not configurable); every client here talks to 127.0.0.1.
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
