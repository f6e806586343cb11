/**
 * Child process of bench/body-bounds.ts: answers ONE webhook body with the deployed ingest
 * handler in a fresh process, so the process's peak RSS (getrusage's ru_maxrss, which only ever
 * grows) belongs to that body alone. Run as `node --expose-gc --import tsx bench/body-memory.ts
 * <body file> <queue url> <sqs endpoint>`; reports over the IPC channel.
 *
 * `--parse-only` instead runs a bare JSON.parse of the body: what ingest did before it bounded
 * the body's shape (the reference for the unbounded cost).
 */
import './env';
import { readFileSync } from 'node:fs';
import { SQSClient } from '@aws-sdk/client-sqs';
import { makeIngestHandler } from '../functions/ingest';
import { httpApiEvent } from '../local/apigw';
import { captureOutput } from './logs';
import { WEBHOOK_SECRET } from './stack';

export interface BodyMemoryResult {
  status: number;
  code?: string;
  /** ru_maxrss after answering minus the RSS just before: what answering the body added at its peak, bytes. */
  peakRssGrowth: number;
  /** ru_maxrss after answering: the whole process at its peak, bytes. */
  peakRss: number;
  ms: number;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const parseOnly = args[0] === '--parse-only';
  const [file, queueUrl, sqsEndpoint] = parseOnly ? args.slice(1) : args;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || !file || (!parseOnly && (!queueUrl || !sqsEndpoint)))
    throw new Error('usage: node --expose-gc --import tsx bench/body-memory.ts [--parse-only] <file> [<queue url> <sqs endpoint>]');

  const handler = makeIngestHandler({
    sqs: new SQSClient({ endpoint: sqsEndpoint, region: process.env.AWS_REGION }),
    config: async () => ({
      webhookSecret: WEBHOOK_SECRET,
      referralEvent: 'referral redeemed',
      referrerEmailProperty: 'referrer_email',
      redeemerEmailProperty: 'redeemer_email',
      queueUrl: queueUrl ?? '',
    }),
  });
  const request = (body: string) =>
    httpApiEvent({
      method: 'POST',
      path: '/webhooks/posthog',
      headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json' },
      body,
    });

  const release = captureOutput();
  // The event as the Lambda runtime hands it over: the body one string inside it.
  const event = request(readFileSync(file, 'utf8'));
  // Warm: modules, the SDK client and its connection, so only the body's own cost is measured.
  if (!parseOnly) await handler(request(readFileSync(file.replace(/[^/]+$/, 'small.json'), 'utf8')));
  gc();
  gc();
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  let status = 0;
  let code: string | undefined;
  if (parseOnly) {
    JSON.parse(event.body ?? '');
  } else {
    const result = await handler(event);
    status = result.statusCode ?? 0;
    code = (JSON.parse(result.body ?? '{}') as { error?: { code?: string } }).error?.code;
  }
  const ms = performance.now() - started;
  // ru_maxrss is in kilobytes on Linux (bytes on macOS; the bench runs on Linux and Lambda is Linux).
  const peakRss = process.resourceUsage().maxRSS * 1024;
  release();
  const result: BodyMemoryResult = { status, code, peakRssGrowth: Math.max(0, peakRss - rssBefore), peakRss, ms };
  process.send!(result, () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
