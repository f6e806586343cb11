import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUlid } from '../../lib/infra/ulid';
import { listenLocal, readBody, sendJson } from '../http';

/**
 * A fake Customer.io Track API v1 on 127.0.0.1, for integration tests, the local stack and the
 * chaos soak. It keeps the parts of the contract (CONTRACTS.md §3) that exactly-once depends on:
 * Basic auth, the size limits, ULID ids, and above all that a repeated `id` is accepted but not
 * recorded again. Faults can be injected to prove the worker's retries never mail twice.
 */

export interface FakeCustomerIoOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 'sandbox-site'. */
  siteId?: string;
  /** Default 'sandbox-key'. */
  apiKey?: string;
  /** Delay before each answer, to mimic a real round trip. */
  latencyMs?: number;
  /** Called for each newly recorded event (not for duplicates), e.g. to print it. */
  onEvent?: (e: FakeTrackedEvent) => void;
}

export interface FakeTrackedEvent {
  /** Decoded from the path; email identifiers lowercased, as Customer.io treats them case-insensitively. */
  identifier: string;
  name: string;
  id: string;
  /** Unix seconds: the body's, or the time received when absent. */
  timestamp: number;
  data: Record<string, unknown>;
  /** Epoch ms. */
  receivedAt: number;
}

export type CustomerIoFault =
  | 'http500'
  | 'http503'
  /** Answered with Retry-After: 1. */
  | 'http429'
  /** Never answered, no effect: the client's timeout must fire. */
  | 'timeout'
  /** The event is recorded, then the socket destroyed without an answer: the client must retry safely. */
  | 'lost-response'
  | 'unauthorized';

export interface FakeCustomerIo {
  /** Origin to use as CustomerIoClientOptions.trackUrl. */
  url: string;
  /** The worker settings that point at this fake, with its credentials. */
  readonly env: { CUSTOMERIO_TRACK_URL: string; CUSTOMERIO_SITE_ID: string; CUSTOMERIO_API_KEY: string };
  /** Accepted events, deduped by id, in arrival order. */
  events: FakeTrackedEvent[];
  /** Every request on the events route; status 0 when no answer was sent (timeout, lost-response). */
  requests: { status: number; id?: string }[];
  /** Requests whose id had already been recorded. */
  duplicatesIgnored: number;
  /** Faults for the next requests, one each, in order; they take precedence over the policy. */
  injectFaults(...f: CustomerIoFault[]): void;
  /** Asked for a fault on each request once the injected queue is empty; undefined answers normally. */
  setFaultPolicy(p: (() => CustomerIoFault | undefined) | undefined): void;
  /** Forgets events, requests, seen ids, queued faults and the policy. */
  reset(): void;
  /** Where its socket is bound, as the operating system reports it. */
  listening(): { address: string; port: number };
  close(): Promise<void>;
}

const ROUTE = /^\/api\/v1\/customers\/([^/]+)\/events\/?$/;
const MAX_IDENTIFIER_BYTES = 150;
const MAX_NAME_BYTES = 100;
const MAX_BODY_BYTES = 100_000;

interface Outcome {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface Parsed {
  identifier: string;
  name: string;
  id?: string;
  timestamp?: number;
  data: Record<string, unknown>;
}

export async function startFakeCustomerIo(options: FakeCustomerIoOptions = {}): Promise<FakeCustomerIo> {
  const siteId = options.siteId ?? 'sandbox-site';
  const apiKey = options.apiKey ?? 'sandbox-key';
  const expectedAuth = `Basic ${Buffer.from(`${siteId}:${apiKey}`).toString('base64')}`;
  const latencyMs = options.latencyMs ?? 0;
  // Arrays are cleared in place on reset, so a test holding `fake.events` keeps seeing the truth.
  const events: FakeTrackedEvent[] = [];
  const requests: { status: number; id?: string }[] = [];
  const seenIds = new Set<string>();
  const faults: CustomerIoFault[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let policy: (() => CustomerIoFault | undefined) | undefined;
  let duplicatesIgnored = 0;
  let closed = false;

  /** Validates like Customer.io, then records unless the id was seen before. */
  function accept(rawIdentifier: string, body: Buffer, tooLarge: boolean): Outcome {
    const parsed = parse(rawIdentifier, body, tooLarge);
    if (typeof parsed === 'string') return { status: 400, body: { meta: { errors: [parsed] } } };
    // ULIDs are case-insensitive; compare them in their canonical upper case.
    const id = parsed.id?.toUpperCase();
    if (id !== undefined && seenIds.has(id)) {
      duplicatesIgnored++;
      return { status: 200, body: {} };
    }
    if (id !== undefined) seenIds.add(id);
    const receivedAt = Date.now();
    const event: FakeTrackedEvent = {
      identifier: parsed.identifier,
      name: parsed.name,
      id: parsed.id ?? '',
      timestamp: parsed.timestamp ?? Math.floor(receivedAt / 1000),
      data: parsed.data,
      receivedAt,
    };
    events.push(event);
    options.onEvent?.(event);
    return { status: 200, body: {} };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = req.method === 'POST' ? ROUTE.exec(new URL(req.url ?? '/', 'http://x').pathname) : null;
    const { body, tooLarge } = await readBody(req, MAX_BODY_BYTES);
    if (!match) {
      send(res, { status: 404, body: { meta: { errors: ['not found'] } } });
      return;
    }
    const id = peekId(body);
    const authorized = req.headers.authorization === expectedAuth;
    const fault = faults.shift() ?? policy?.();
    if (fault === 'timeout' || fault === 'lost-response') {
      requests.push({ status: 0, id });
      if (fault === 'lost-response') {
        if (authorized) accept(match[1], body, tooLarge);
        // After the event is recorded, so the client cannot know it succeeded.
        later(() => res.socket?.destroy());
      }
      // 'timeout': hold the socket open until the client gives up or close() runs.
      return;
    }
    const outcome =
      faultOutcome(fault) ??
      (authorized ? accept(match[1], body, tooLarge) : { status: 401, body: { meta: { errors: ['unauthorized'] } } });
    requests.push({ status: outcome.status, id });
    later(() => send(res, outcome));
  }

  function later(fn: () => void): void {
    if (latencyMs <= 0) return fn();
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, latencyMs);
    timers.add(timer);
  }

  const server = await listenLocal((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, { status: 500, body: { meta: { errors: ['fake internal error'] } } });
    });
  }, options.port ?? 0);
  const url = server.url;
  return {
    url,
    env: { CUSTOMERIO_TRACK_URL: url, CUSTOMERIO_SITE_ID: siteId, CUSTOMERIO_API_KEY: apiKey },
    events,
    requests,
    get duplicatesIgnored() {
      return duplicatesIgnored;
    },
    injectFaults(...f) {
      faults.push(...f);
    },
    setFaultPolicy(p) {
      policy = p;
    },
    reset() {
      events.length = 0;
      requests.length = 0;
      seenIds.clear();
      faults.length = 0;
      policy = undefined;
      duplicatesIgnored = 0;
    },
    listening: () => server.listening(),
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // Also ends idle keep-alive sockets and held 'timeout' requests, which would keep close() waiting.
      await server.close();
    },
  };
}

function faultOutcome(fault: CustomerIoFault | undefined): Outcome | undefined {
  switch (fault) {
    case 'http500':
      return { status: 500, body: { meta: { errors: ['internal server error'] } } };
    case 'http503':
      return { status: 503, body: { meta: { errors: ['service unavailable'] } } };
    case 'http429':
      return { status: 429, body: { meta: { errors: ['rate limited'] } }, headers: { 'Retry-After': '1' } };
    case 'unauthorized':
      return { status: 401, body: { meta: { errors: ['unauthorized'] } } };
    default:
      return undefined;
  }
}

/** The request, or the text of the 400 Customer.io would answer. */
function parse(rawIdentifier: string, body: Buffer, tooLarge: boolean): Parsed | string {
  if (tooLarge) return `request body larger than ${MAX_BODY_BYTES} bytes`;
  let identifier: string;
  try {
    identifier = decodeURIComponent(rawIdentifier);
  } catch {
    return 'identifier is not valid percent-encoding';
  }
  if (Buffer.byteLength(identifier) > MAX_IDENTIFIER_BYTES) return `identifier longer than ${MAX_IDENTIFIER_BYTES} bytes`;
  if (identifier.includes('@')) identifier = identifier.toLowerCase();
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return 'request body is not valid JSON';
  }
  if (!isRecord(json)) return 'request body must be a JSON object';
  const { name, id, timestamp, data } = json;
  if (typeof name !== 'string' || name === '') return 'name is required';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `name longer than ${MAX_NAME_BYTES} bytes`;
  if (id !== undefined && (typeof id !== 'string' || !isUlid(id))) return 'id must be a ULID';
  if (timestamp !== undefined && (typeof timestamp !== 'number' || !Number.isFinite(timestamp))) {
    return 'timestamp must be a number of unix seconds';
  }
  if (data !== undefined && !isRecord(data)) return 'data must be an object';
  return { identifier, name, id, timestamp, data: data ?? {} };
}

/** The id, if any, for the request log, even when the request is later refused. */
function peekId(body: Buffer): string | undefined {
  try {
    const json: unknown = JSON.parse(body.toString('utf8'));
    return isRecord(json) && typeof json.id === 'string' ? json.id : undefined;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function send(res: ServerResponse, outcome: Outcome): void {
  sendJson(res, outcome.status, outcome.body, outcome.headers);
}
