/**
 * 2. Ingest. The deployed handler (makeIngestHandler, config re-read per invocation, logs and
 * metrics on) against fauxqs: in-process latency per request, interleaved with a bare SendMessage
 * of the same body through the same SDK client (the reference: what queueing alone costs); then
 * requests/s through a node:http server that turns each request into an API Gateway v2 event,
 * beside the same server whose handler only sends the message.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { httpApiEvent } from '../local/apigw';
import { captureOutput, outputCounters, progress } from './logs';
import type { SectionResult } from './report';
import { BenchStack, WEBHOOK_SECRET, ingestEvent, referralBody, type Emulators } from './stack';
import { fmt, fmtInt, mapConcurrent, median, nowMs, percentile } from './stats';

const SECTION = '2. Ingest';

type Handler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A local stand-in for API Gateway: each POST becomes an HTTP API v2 event for `handler`. */
async function serve(handler: Handler): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    readBody(req)
      .then(async (body) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name] = value;
        const result = await handler(httpApiEvent({ method: req.method, path: req.url?.split('?')[0], headers, body }));
        res.writeHead(result.statusCode ?? 200, (result.headers ?? {}) as Record<string, string>);
        res.end(result.body ?? '');
      })
      .catch(() => {
        res.writeHead(500);
        res.end();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/posthog`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `total` POSTs with `concurrency` keep-alive clients (global fetch); requests/s and non-2xx count. */
async function load(url: string, bodies: string[], concurrency: number): Promise<{ rps: number; failed: number }> {
  let failed = 0;
  const start = nowMs();
  await mapConcurrent(bodies, concurrency, async (body) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json' },
      body,
    });
    await response.arrayBuffer();
    if (response.status !== 202) failed++;
  });
  return { rps: bodies.length / ((nowMs() - start) / 1000), failed };
}

export async function benchIngest(emulators: Emulators, options: { quick: boolean }): Promise<SectionResult> {
  const stack = await BenchStack.start(emulators);
  const release = captureOutput();
  try {
    const warmup = options.quick ? 50 : 300;
    const samples = options.quick ? 300 : 3_000;
    const queueUrl = stack.resources.queueUrl;
    const bare = (body: string) => stack.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));

    progress(`ingest: ${samples} in-process requests, interleaved with bare SendMessage`);
    for (let i = 0; i < warmup; i++) {
      const { body } = referralBody();
      await stack.ingest(body);
      await bare(body);
    }
    const handlerMs: number[] = [];
    const bareMs: number[] = [];
    let rejected = 0;
    const logBefore = outputCounters();
    for (let i = 0; i < samples; i++) {
      const { body } = referralBody();
      const event = ingestEvent(body);
      let t0 = nowMs();
      const result = await stack.ingestHandler(event);
      handlerMs.push(nowMs() - t0);
      if (result.statusCode !== 202) rejected++;
      t0 = nowMs();
      await bare(body);
      bareMs.push(nowMs() - t0);
    }
    const logAfter = outputCounters();
    const logBytesPerRequest = (logAfter.bytes - logBefore.bytes) / samples;

    const requests = options.quick ? 300 : 3_000;
    const concurrency = 16;
    progress(`ingest: ${requests} HTTP requests, ${concurrency} keep-alive clients, handler then reference`);
    const app = await serve((event) => stack.ingestHandler(event));
    const reference = await serve(async (event) => {
      await bare(event.body ?? '');
      return { statusCode: 202, body: '{}' };
    });
    const bodies = () => Array.from({ length: requests }, () => referralBody().body);
    await load(app.url, bodies().slice(0, 100), concurrency);
    await load(reference.url, bodies().slice(0, 100), concurrency);
    const appLoad = await load(app.url, bodies(), concurrency);
    const referenceLoad = await load(reference.url, bodies(), concurrency);
    await app.close();
    await reference.close();

    const p50 = median(handlerMs);
    const p99 = percentile(handlerMs, 99);
    const bareP50 = median(bareMs);
    const bareP99 = percentile(bareMs, 99);
    return {
      rows: [
        {
          id: 'ingest.latency.p50',
          section: SECTION,
          measure: `handler latency p50, in-process on fauxqs (n=${samples})`,
          value: `${fmt(p50, 2)} ms`,
          reference: `bare SendMessage p50: ${fmt(bareP50, 2)} ms`,
          ratio: p50 / bareP50,
        },
        {
          id: 'ingest.latency.p99',
          section: SECTION,
          measure: `handler latency p99, in-process on fauxqs (n=${samples})`,
          value: `${fmt(p99, 2)} ms`,
          reference: `bare SendMessage p99: ${fmt(bareP99, 2)} ms`,
          ratio: p99 / bareP99,
          target: 'p99 ≤ 5 ms (absolute)',
          holds: p99 <= 5,
        },
        {
          id: 'ingest.http.rps',
          section: SECTION,
          measure: `requests/s through local HTTP (${concurrency} keep-alive clients, n=${requests})`,
          value: `${fmtInt(appLoad.rps)} req/s${appLoad.failed ? ` (${appLoad.failed} not 202)` : ''}`,
          reference: `same server, handler = bare SendMessage: ${fmtInt(referenceLoad.rps)} req/s`,
          ratio: appLoad.rps / referenceLoad.rps,
        },
      ],
      notes: [
        `Every request a fresh referral; ${rejected} of ${samples} in-process requests were not answered 202.`,
        `In-process latency excludes building the API Gateway event (API Gateway's work) and includes the config parse, the bearer check, body parsing, SendMessage to fauxqs over loopback, one INFO log line and the EMF metrics flush (${fmt(logBytesPerRequest, 0)} bytes printed per request).`,
        'The HTTP figure shares one Node process (2 cores) between the load generator, the server, the handler and fauxqs, as does its reference: it is a ratio, not a capacity. In AWS each request is its own Lambda invocation.',
      ],
      data: { p50, p99, logBytesPerRequest },
    };
  } finally {
    release();
    await stack.stop();
  }
}
