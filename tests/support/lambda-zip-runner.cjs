'use strict';
/**
 * Runs one unpacked Lambda zip the way the nodejs runtime does: require the file the template's
 * `Handler` names, call its export once per event (one warm container, in order), with a context
 * whose remaining time counts down from the function's timeout. Plain CommonJS on purpose: the
 * child has no TypeScript, no ts-node and no node_modules but what the zip carries.
 *
 *   node --require <this dir>/loopback-only.cjs lambda-zip-runner.cjs <job.json>
 *
 * job.json: { dir, handler: "functions/ingest.handler", functionName, timeoutSeconds, events, resultFile }
 * The results go to resultFile (stdout is the handler's logs): [{ ok: true, value } | { ok: false, error }].
 */
const { readFileSync, writeFileSync } = require('node:fs');
const { randomUUID } = require('node:crypto');
const { join } = require('node:path');

async function main() {
  const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  // "functions/ingest.handler": the module path, then the export, split at the last dot (as Lambda does).
  const dot = job.handler.lastIndexOf('.');
  const modulePath = join(job.dir, job.handler.slice(0, dot));
  const exportName = job.handler.slice(dot + 1);
  const handler = require(modulePath)[exportName];
  if (typeof handler !== 'function') throw new Error(`${job.handler}: ${modulePath} exports no function "${exportName}"`);

  const results = [];
  for (const event of job.events) {
    const startedAt = Date.now();
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      functionName: job.functionName,
      functionVersion: '$LATEST',
      invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${job.functionName}`,
      memoryLimitInMB: '256',
      awsRequestId: randomUUID(),
      logGroupName: `/aws/lambda/${job.functionName}`,
      logStreamName: 'artefact-test',
      getRemainingTimeInMillis: () => Math.max(0, job.timeoutSeconds * 1000 - (Date.now() - startedAt)),
    };
    try {
      results.push({ ok: true, value: (await handler(event, context)) ?? null });
    } catch (error) {
      results.push({ ok: false, error: { name: error && error.name, message: error && error.message, reason: error && error.reason } });
    }
  }
  writeFileSync(job.resultFile, JSON.stringify(results));
}

main().then(
  // Lambda freezes the container after the answer; here the SDK's kept-alive sockets would hold the process open.
  () => process.exit(0),
  (error) => {
    process.stderr.write(`lambda-zip-runner: ${error && error.stack ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
