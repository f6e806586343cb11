// Plain ESM on purpose: fauxqs ships ESM only, and both the local stack (tsx) and jest's
// globalSetup (native import) can load this file as it is.
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';

const LOOPBACK = '127.0.0.1';

/**
 * Starts the two AWS emulators in this process, on loopback only: dynalite (DynamoDB) and fauxqs
 * (SQS with visibility timeouts, long polling and redrive to a DLQ). Port 0 picks free ports.
 * Neither checks credentials, so an emulator reachable from the network would let anyone on it
 * put a referral on the work queue (paid for real when real Shopify credentials are set).
 */
export async function startEmulators({ sqsPort = 0, dynamoPort = 0 } = {}) {
  // fauxqs@1.9.2's startFauxqs() always listens on 0.0.0.0 (dist/app.js: app.listen({ port,
  // host: "0.0.0.0" }); its `host` option only names queue URLs). Its exported buildApp() is the
  // same Fastify app without the listen, so we listen ourselves, on loopback. Its stores are made
  // by buildApp and shut down by its preClose hook on close(), as startFauxqs's are.
  //
  // Queue URLs are sqs.<region>.<host>:<port>/…. With host localhost they would be
  // sqs.us-east-1.localhost, which does not resolve here, and the SDK sends to the queue URL's host.
  // With 127.0.0.1 the URL does not parse, so the SDK keeps the configured 127.0.0.1 endpoint
  // (warning once per call; local/start.ts mutes exactly that warning).
  const sqs = buildApp({ logger: false, host: LOOPBACK });
  const sqsEndpoint = await sqs.listen({ port: sqsPort, host: LOOPBACK });
  const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  try {
    await new Promise((resolve, reject) => {
      dynamo.once('error', reject);
      dynamo.listen(dynamoPort, LOOPBACK, resolve);
    });
  } catch (error) {
    await sqs.close();
    throw error;
  }
  return {
    sqsEndpoint,
    dynamoEndpoint: `http://${LOOPBACK}:${dynamo.address().port}`,
    /** Where each emulator's socket is bound, as the operating system reports it. */
    listening() {
      return [
        { name: 'SQS emulator (fauxqs)', ...pick(sqs.server.address()) },
        { name: 'DynamoDB emulator (dynalite)', ...pick(dynamo.address()) },
      ];
    },
    async stop() {
      await sqs.close();
      await new Promise((resolve) => dynamo.close(resolve));
    },
  };
}

const pick = ({ address, port }) => ({ address, port });
