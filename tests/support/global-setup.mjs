// Starts dynalite and fauxqs once for the whole run; test files create their own queues and
// tables (unique names), so they stay independent. Workers inherit the endpoints through env.
import { randomUUID } from 'node:crypto';
import { startEmulators } from '../../local/emulators.mjs';

export default async function globalSetup() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const emulators = await startEmulators();
  globalThis.__EMULATORS__ = emulators;
  process.env.TEST_SQS_ENDPOINT = emulators.sqsEndpoint;
  process.env.TEST_DYNAMODB_ENDPOINT = emulators.dynamoEndpoint;
  // Names this run's shared `serverless package` output (tests/support/serverless-package.ts).
  process.env.TEST_RUN_ID = randomUUID();
  // Where their sockets are bound, for tests/integration/local-loopback.test.ts.
  process.env.TEST_EMULATORS_LISTENING = JSON.stringify(emulators.listening());
}
