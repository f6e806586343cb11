// The bench's emulators in a process of their own: dynalite and fauxqs stand in for AWS services
// that run on other machines, so their CPU (dynalite's expression parser above all) must not take
// turns with the worker containers on one event loop. Prints the endpoints as one JSON line, then
// serves until its parent ends it or goes away.
import { startEmulators } from '../local/emulators.mjs';

const emulators = await startEmulators();
process.stdout.write(`${JSON.stringify({ sqsEndpoint: emulators.sqsEndpoint, dynamoEndpoint: emulators.dynamoEndpoint })}\n`);
const stop = () => {
  emulators.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
// The parent's end closes this pipe: no emulators left behind by a bench that crashed.
process.stdin.on('end', stop);
process.stdin.resume();
