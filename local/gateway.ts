/**
 * The local API Gateway: an HTTP server on 127.0.0.1 in front of the ingest handler (and the
 * referral-codes handler), turning each request into the HTTP API (payload v2) event API Gateway
 * would deliver and its result back.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { MAX_BODY_BYTES } from '../lib/infra/config';
import { httpApiEvent } from './apigw';
import { listenLocal, readBody, sendJson, type LocalServer } from './http';
import { REFERRAL_CODES_PATH, say, WEBHOOK_PATH } from './output';

export type IngestHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
/** functions/referral-codes.ts's handler: the same shape as ingest's. */
export type ReferralCodesHandler = IngestHandler;

/**
 * The server stops buffering past ingest's own limit, what API Gateway and Lambda can deliver
 * (6 MB, lib/infra/config.ts), and answers as ingest does: the same bodies pass here as deployed.
 */
const MAX_READ_BYTES = MAX_BODY_BYTES;

/** Listens on 127.0.0.1:`port` (0: a free one); a taken port is an error that says what to do. */
export async function startGateway(ingest: IngestHandler, port: number, referralCodes?: ReferralCodesHandler): Promise<LocalServer> {
  try {
    return await listenLocal((req, res) => {
      route(req, res, ingest, referralCodes).catch((error: unknown) => {
        say(`⚠️  ${req.method} ${req.url} failed: ${(error as Error)?.stack ?? String(error)}`);
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal_error', message: 'Internal Server Error' } });
        else res.destroy();
      });
    }, port);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`port ${port} is in use: is the stack already running? Try PORT=3001 npm start`, { cause: error });
    }
    throw error;
  }
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  ingest: IngestHandler,
  referralCodes?: ReferralCodesHandler,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const { body, tooLarge } = await readBody(req, MAX_READ_BYTES);

  if (req.method === 'GET' && path === '/health') {
    sendJson(res, 200, { status: 'ok' });
    return;
  }
  if (req.method === 'POST' && path === REFERRAL_CODES_PATH && referralCodes) {
    // Its body is a few bytes; the handler bounds it itself, as deployed.
    const result = await referralCodes(httpApiEvent({ method: 'POST', path, headers: plainHeaders(req), body }));
    const status = result.statusCode ?? 200;
    res.writeHead(status, stringHeaders(result.headers));
    res.end(result.body ?? '');
    say(`🔑 referral code → ${status}${status === 200 ? '' : ` ${describeIngestAnswer(result.body ?? '')}`}`);
    return;
  }
  if (req.method !== 'POST' || path !== WEBHOOK_PATH) {
    sendJson(res, 404, { error: { code: 'not_found', message: `no route for ${req.method} ${path}; try POST ${WEBHOOK_PATH}` } });
    return;
  }
  if (tooLarge) {
    sendJson(res, 413, { error: { code: 'body_too_large', message: `body is larger than ${MAX_READ_BYTES} bytes` } });
    say(`📨 webhook → 413 body_too_large (over ${MAX_READ_BYTES} bytes, not passed to ingest)`);
    return;
  }

  const result = await ingest(httpApiEvent({ method: 'POST', path, headers: plainHeaders(req), body }));
  const status = result.statusCode ?? 200;
  const text = result.body ?? '';
  res.writeHead(status, { ...stringHeaders(result.headers), ...(result.cookies?.length ? { 'set-cookie': result.cookies } : {}) });
  res.end(result.isBase64Encoded ? Buffer.from(text, 'base64') : text);
  say(`📨 webhook → ${status} ${describeIngestAnswer(text)}`);
}

/** One short line about ingest's answer: `queued (event …)`, `ignored`, or the error code. */
function describeIngestAnswer(body: string): string {
  try {
    const json = JSON.parse(body) as { status?: string; eventId?: string; reason?: string; error?: { code?: string; message?: string } };
    if (json.error) return `${json.error.code}: ${json.error.message}`;
    if (json.status === 'queued') return `queued event ${json.eventId} for the worker`;
    if (json.status === 'ignored') return `ignored (${json.reason})`;
    return json.status ?? '';
  } catch {
    return '';
  }
}

function plainHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return headers;
}

function stringHeaders(headers: APIGatewayProxyStructuredResultV2['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name] = String(value);
  return out;
}
