import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenLocal, readBody, sendJson } from '../http';

export interface FakeCapturedEvent {
  uuid?: string;
  event: string;
  distinctId: string;
  properties: Record<string, unknown>;
  /** ISO; the capture's own `timestamp`, else when it arrived. */
  timestamp: string;
  /** The person's email, as a `$set: {email}` in the capture would make it. */
  personEmail?: string;
  /** The PostHog person the distinct id belongs to; by default one person per distinct id (personIdOf). */
  personId?: string;
}

/** This sandbox's person for a distinct id: one person each, with a stable uuid-shaped id. */
export function personIdOf(distinctId: string): string {
  const hex = createHash('sha256').update(`person:${distinctId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export type PostHogFault = 'http503' | 'lost-response';
/** What the Query API answers the next requests with instead of their rows (a throttle, an outage). */
export type PostHogQueryFault = 'http429' | 'http503';

export interface FakePostHog {
  url: string;
  apiKey: string;
  /** The one project the Query API answers for, and the personal API key (query:read) it accepts. */
  projectId: string;
  personalApiKey: string;
  /** The worker settings that point at this fake, with its project key. */
  readonly env: { POSTHOG_HOST: string; POSTHOG_API_KEY: string };
  /** The reconciler settings that point at this fake (RECONCILE_FROM is the caller's). */
  readonly queryEnv: { POSTHOG_APP_HOST: string; POSTHOG_PROJECT_ID: string; POSTHOG_PERSONAL_API_KEY: string };
  /** Every capture accepted, repeats included: PostHog's own dedupe by uuid is best-effort. */
  captures: FakeCapturedEvent[];
  /** Query API requests answered, in order (their `values`), for pagination checks. */
  queries: Record<string, unknown>[];
  /** An event as if the app had captured it (a referral the webhook then failed to deliver). */
  record(event: Omit<FakeCapturedEvent, 'timestamp' | 'uuid'> & { uuid?: string; timestamp?: string }): FakeCapturedEvent;
  injectFaults(...faults: PostHogFault[]): void;
  /** The next Query API requests fail so, one fault each. */
  injectQueryFaults(...faults: PostHogQueryFault[]): void;
  /** Where its socket is bound, as the operating system reports it. */
  listening(): { address: string; port: number };
  close(): Promise<void>;
}

/** PostHog answers at most this many rows without a LIMIT, and up to 50,000 with one (docs/api/queries). */
const DEFAULT_QUERY_LIMIT = 100;
const MAX_QUERY_LIMIT = 50_000;
const QUERY_PATH = /^\/api\/projects\/([^/]+)\/query\/?$/;
/** A guard against a runaway client, far above any capture or query this service sends; not a PostHog limit. */
const MAX_BODY_BYTES = 10_000_000;

/**
 * PostHog's capture endpoint (`POST /i/v0/e/`) as the contract describes it: 200 for anything
 * that parses, even an event it will silently drop (no event name or distinct_id) — which is
 * why those are not recorded here; 401 for a wrong project key.
 *
 * And the Query API (`POST /api/projects/:id/query/`) for the events it has seen captured, for
 * the reconciler's one HogQL query only: this fake does not parse SQL, it reads the query's
 * `values` (event, since, until, after_timestamp, after_uuid) and its LIMIT, and answers
 * `{results, columns, hasMore}` ordered by (timestamp, uuid) as the query asks. 401 without the
 * personal API key, 404 for another project, 400 for anything but a HogQLQuery.
 *
 * The catch-up's query (personEventsQuery) is answered the same way from its values, its QUALIFY_WHERE
 * read by a small evaluator (sandboxCondition): comparisons of `properties.x` or `toFloat(properties.x)`
 * with a literal, joined by AND; anything else is a 400, as PostHog answers a query it cannot parse.
 */
export async function startFakePostHog(
  options: { apiKey?: string; personalApiKey?: string; projectId?: string; port?: number; onCapture?: (e: FakeCapturedEvent) => void } = {},
): Promise<FakePostHog> {
  const apiKey = options.apiKey ?? 'phc_sandbox';
  const personalApiKey = options.personalApiKey ?? 'phx_sandbox';
  const projectId = options.projectId ?? '1';
  const captures: FakeCapturedEvent[] = [];
  const queries: Record<string, unknown>[] = [];
  const faults: PostHogFault[] = [];
  const queryFaults: PostHogQueryFault[] = [];

  const record: FakePostHog['record'] = (event) => {
    const captured: FakeCapturedEvent = {
      ...event,
      uuid: event.uuid ?? randomUUID(),
      timestamp: event.timestamp ?? new Date().toISOString(),
    };
    captures.push(captured);
    options.onCapture?.(captured);
    return captured;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { body: raw, tooLarge } = await readBody(req, MAX_BODY_BYTES);
    const reply = (status: number, body: unknown) => sendJson(res, status, body);
    if (tooLarge)
      return reply(413, { type: 'validation_error', detail: `request body larger than this sandbox reads (${MAX_BODY_BYTES} bytes)` });
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    let body: Record<string, unknown>;
    const parse = (): boolean => {
      try {
        body = JSON.parse(raw.toString('utf8'));
        return body !== null && typeof body === 'object';
      } catch {
        return false;
      }
    };
    const query = QUERY_PATH.exec(path);
    if (req.method === 'POST' && query) {
      if (req.headers.authorization !== `Bearer ${personalApiKey}`) {
        return reply(401, { type: 'authentication_error', code: 'authentication_failed', detail: 'Personal API key is invalid.' });
      }
      if (decodeURIComponent(query[1]!) !== projectId) return reply(404, { type: 'invalid_request', detail: 'Not found.' });
      const queryFault = queryFaults.shift();
      // PostHog's throttle answer (DRF): 429 with Retry-After and a "throttled" detail.
      if (queryFault === 'http429') {
        res.setHeader('retry-after', '1');
        return reply(429, { type: 'throttled_error', code: 'throttled', detail: 'Request was throttled.' });
      }
      if (queryFault === 'http503') return reply(503, { error: 'unavailable' });
      if (!parse()) return reply(400, { type: 'validation_error', detail: 'Malformed request data' });
      return answerQuery(body!, captures, queries, reply);
    }
    if (req.method !== 'POST' || !path.startsWith('/i/v0/e')) return reply(404, { error: 'not found' });
    const fault = faults.shift();
    if (fault === 'http503') return reply(503, { error: 'unavailable' });
    if (!parse()) return reply(400, { type: 'validation_error', detail: 'Malformed request data' });
    if (body!.api_key !== apiKey) return reply(401, { type: 'authentication_error', detail: 'Project API key is invalid' });
    if (typeof body!.event === 'string' && body!.event && typeof body!.distinct_id === 'string' && body!.distinct_id) {
      const properties = (body!.properties as Record<string, unknown>) ?? {};
      const set = properties.$set as { email?: unknown } | undefined;
      record({
        uuid: typeof body!.uuid === 'string' ? body!.uuid : undefined,
        event: body!.event,
        distinctId: body!.distinct_id,
        properties,
        timestamp:
          typeof body!.timestamp === 'string' && Number.isFinite(Date.parse(body!.timestamp))
            ? new Date(body!.timestamp).toISOString()
            : undefined,
        personEmail: typeof set?.email === 'string' ? set.email : undefined,
      });
    }
    if (fault === 'lost-response') return void req.socket.destroy();
    reply(200, { status: 'Ok' });
  };
  const { url, close, listening } = await listenLocal((req, res) => {
    handle(req, res).catch(() => sendJson(res, 500, { error: 'sandbox failure' }));
  }, options.port ?? 0);
  return {
    url,
    apiKey,
    projectId,
    personalApiKey,
    env: { POSTHOG_HOST: url, POSTHOG_API_KEY: apiKey },
    queryEnv: { POSTHOG_APP_HOST: url, POSTHOG_PROJECT_ID: projectId, POSTHOG_PERSONAL_API_KEY: personalApiKey },
    captures,
    queries,
    record,
    injectFaults: (...more) => void faults.push(...more),
    injectQueryFaults: (...more) => void queryFaults.push(...more),
    listening,
    close,
  };
}

function answerQuery(
  body: Record<string, unknown>,
  captures: readonly FakeCapturedEvent[],
  queries: Record<string, unknown>[],
  reply: (status: number, body: unknown) => void,
): void {
  const query = body.query as { kind?: unknown; query?: unknown; values?: Record<string, unknown> } | undefined;
  if (query?.kind !== 'HogQLQuery' || typeof query.query !== 'string') {
    return reply(400, { type: 'validation_error', detail: 'this sandbox answers HogQLQuery only' });
  }
  const values = query.values ?? {};
  queries.push(values);
  if ('referrer_email' in values) return answerSharedSignals(values, captures, reply);
  if ('referral_event' in values) return answerPersonEvents(query.query, values, captures, reply);
  const { page, hasMore, limit } = keysetPage(
    query.query,
    values,
    captures.filter((e) => e.event === values.event),
  );
  reply(200, {
    columns: ['uuid', 'event', 'distinct_id', 'properties', 'timestamp', 'person_email'],
    types: ['UUID', 'String', 'String', 'String', "DateTime64(6, 'UTC')", 'Nullable(String)'],
    // HogQL returns `properties` as the JSON text ClickHouse stores.
    results: page.map(({ e, id }) => [id, e.event, e.distinctId, JSON.stringify(e.properties), e.timestamp, e.personEmail ?? null]),
    hasMore,
    limit,
    offset: 0,
  });
}

/**
 * The catch-up's question (lib/adapters/posthog-query.ts personEventsQuery): the window's
 * qualifying events (passing QUALIFY_WHERE) and refund events, each only of a person who captured
 * the referral event from that role's `*_referrals_since` to `until`, keyset-paged as the referral query.
 */
function answerPersonEvents(
  text: string,
  values: Record<string, unknown>,
  captures: readonly FakeCapturedEvent[],
  reply: (status: number, body: unknown) => void,
): void {
  const value = (name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const time = (name: string): number => Date.parse(value(name) ?? '');
  const whereText = /event = \{qualify_event\} AND \(\n([\s\S]*?)\n\) AND person_id/.exec(text)?.[1];
  const where = whereText === undefined ? () => true : sandboxCondition(whereText);
  if (!where) return reply(400, { type: 'validation_error', code: 'syntax_error', detail: `this sandbox cannot evaluate: ${whereText}` });
  const person = (capture: FakeCapturedEvent): string => capture.personId ?? personIdOf(capture.distinctId);
  const until = time('until');
  const redeemers = (since: number): Set<string> =>
    new Set(
      captures
        .filter((c) => c.event === value('referral_event') && Date.parse(c.timestamp) >= since && Date.parse(c.timestamp) < until)
        .map(person),
    );
  const roles: ((capture: FakeCapturedEvent) => boolean)[] = [];
  if (value('qualify_event') !== undefined) {
    const people = redeemers(time('qualify_referrals_since'));
    roles.push((c) => c.event === value('qualify_event') && where(c.properties) && people.has(person(c)));
  }
  if (value('revoke_event') !== undefined) {
    const people = redeemers(time('revoke_referrals_since'));
    roles.push((c) => c.event === value('revoke_event') && people.has(person(c)));
  }
  const { page, hasMore, limit } = keysetPage(
    text,
    values,
    captures.filter((c) => roles.some((role) => role(c))),
  );
  reply(200, {
    columns: ['uuid', 'event', 'distinct_id', 'properties', 'timestamp', 'person_email', 'person_id'],
    types: ['UUID', 'String', 'String', 'String', "DateTime64(6, 'UTC')", 'Nullable(String)', 'UUID'],
    results: page.map(({ e, id }) => [
      id,
      e.event,
      e.distinctId,
      JSON.stringify(e.properties),
      e.timestamp,
      e.personEmail ?? null,
      person(e),
    ]),
    hasMore,
    limit,
    offset: 0,
  });
}

/**
 * One page of `matching` as both queries keyset-page it: the events in [since, until) after
 * (after_timestamp, after_uuid), oldest first (uuid breaking ties), at most the query's LIMIT.
 */
function keysetPage(text: string, values: Record<string, unknown>, matching: readonly FakeCapturedEvent[]) {
  const limitMatch = /\bLIMIT\s+(\d+)\s*$/i.exec(text);
  const limit = Math.min(limitMatch ? Number(limitMatch[1]) : DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT);
  const time = (value: unknown): number => (typeof value === 'string' ? Date.parse(value) : Number.NaN);
  const since = time(values.since);
  const until = time(values.until);
  const afterTime = time(values.after_timestamp);
  const afterUuid = typeof values.after_uuid === 'string' ? values.after_uuid : '';
  const rows = matching
    .map((e) => ({ e, t: Date.parse(e.timestamp), id: (e.uuid ?? '').toLowerCase() }))
    .filter(({ t }) => !(t < since) && !(t >= until))
    .filter(({ t, id }) => Number.isNaN(afterTime) || t > afterTime || (t === afterTime && id > afterUuid))
    .sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { page: rows.slice(0, limit), hasMore: rows.length > limit, limit };
}

/**
 * The QUALIFY_WHERE this sandbox understands, as a predicate over an event's properties:
 * `properties.x <op> literal` or `toFloat(properties.x) <op> number`, joined by AND (op one of
 * = == != < <= > >=; literal a number or a '…' string). Undefined for anything else.
 */
export function sandboxCondition(text: string): ((properties: Record<string, unknown>) => boolean) | undefined {
  const terms = text.split(/\s+AND\s+/i).map((term) => {
    const match = /^\s*(toFloat\(\s*properties\.(\w+)\s*\)|properties\.(\w+))\s*(==|=|!=|<=|>=|<|>)\s*(-?\d+(?:\.\d+)?|'[^']*')\s*$/.exec(
      term,
    );
    if (!match) return undefined;
    const [, , floatName, plainName, op, literalText] = match;
    const literal: string | number = literalText!.startsWith("'") ? literalText!.slice(1, -1) : Number(literalText);
    return (properties: Record<string, unknown>): boolean => {
      const raw = properties[(floatName ?? plainName)!];
      const left = floatName !== undefined ? Number(raw) : typeof literal === 'number' ? Number(raw) : String(raw ?? '');
      if (typeof left === 'number' && Number.isNaN(left)) return false;
      switch (op) {
        case '=':
        case '==':
          return left === literal;
        case '!=':
          return left !== literal;
        case '<':
          return left < literal;
        case '<=':
          return left <= literal;
        case '>':
          return left > literal;
        default:
          return left >= literal;
      }
    };
  });
  if (terms.some((term) => term === undefined)) return undefined;
  return (properties) => terms.every((term) => term!(properties));
}

/**
 * The worker's shared device / IP question (lib/adapters/posthog-query.ts sharedSignalsQuery),
 * answered from the stored captures as the HogQL would be: events since `since` that carry a
 * `$device_id`, each side matched by distinct id (theirs, or their email) or by the email its
 * person was given (`$set: {email}` on any capture of that distinct id), then the values both
 * sides used, counted.
 */
function answerSharedSignals(
  values: Record<string, unknown>,
  captures: readonly FakeCapturedEvent[],
  reply: (status: number, body: unknown) => void,
): void {
  const text = (name: string): string => (typeof values[name] === 'string' ? (values[name] as string) : '');
  const since = Date.parse(text('since'));
  const personEmail = new Map<string, string>();
  for (const capture of captures) if (capture.personEmail) personEmail.set(capture.distinctId, capture.personEmail.toLowerCase());
  const matches = (capture: FakeCapturedEvent, side: 'referrer' | 'redeemer'): boolean => {
    const email = text(`${side}_email`);
    const ids = [text(`${side}_distinct_id`), email].filter((id) => id !== '');
    return ids.includes(capture.distinctId) || (email !== '' && personEmail.get(capture.distinctId) === email);
  };
  const seen = {
    referrer: { devices: new Set<string>(), ips: new Set<string>() },
    redeemer: { devices: new Set<string>(), ips: new Set<string>() },
  };
  for (const capture of captures) {
    const device = capture.properties.$device_id;
    if (typeof device !== 'string' || device === '' || Date.parse(capture.timestamp) < since) continue;
    const ip = typeof capture.properties.$ip === 'string' ? capture.properties.$ip : '';
    for (const side of ['referrer', 'redeemer'] as const) {
      if (!matches(capture, side)) continue;
      seen[side].devices.add(device);
      if (ip) seen[side].ips.add(ip);
    }
  }
  const both = (a: Set<string>, b: Set<string>): number => [...a].filter((value) => b.has(value)).length;
  reply(200, {
    columns: ['shared_devices', 'shared_ips'],
    types: ['UInt64', 'UInt64'],
    results: [[both(seen.referrer.devices, seen.redeemer.devices), both(seen.referrer.ips, seen.redeemer.ips)]],
    hasMore: false,
  });
}
