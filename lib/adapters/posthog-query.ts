/**
 * PostHog's Query API: the reconciler's "which events happened in this window?", page by page, and
 * the worker's shared device/IP question.
 *
 * Contract (PostHog docs, https://posthog.com/docs/api/queries and /docs/api/query):
 * - `POST {app host}/api/projects/{project id}/query/` with
 *   `{"query": {"kind": "HogQLQuery", "query": "...", "values": {...}}}`, header
 *   `Authorization: Bearer <personal API key>`; the key needs the `query:read` scope.
 *   `values` are constants the query names as `{placeholder}` (HogQLQuery schema, PostHog/posthog
 *   `frontend/src/queries/schema`), so no event name or cursor is ever spliced into the SQL.
 * - The answer is `{"results": [[...], ...], "columns": [...], "hasMore": bool, ...}`.
 * - Without a LIMIT a query returns at most 100 rows; with one, up to 50,000. PostHog recommends
 *   paging by timestamp rather than OFFSET: we page by the keyset (timestamp, uuid), which stays
 *   correct while new events arrive and two events share a timestamp.
 * - The query endpoint is rate limited per key (120 requests an hour by default: PostHogSharedSignals
 *   below): one run is one request per 1,000 rows, every 15 min; a 429 is retryable and honours Retry-After.
 */
import { PermanentError, RetryableError } from '../domain/errors';
import type { PersonRef, SharedSignalsPort } from '../domain/lifecycle/guards';
import { fetchWithTimeout, isRetryableStatus, type Fetch } from '../infra/http';
import { redactText } from '../infra/mask';
import { parseRetryAfter } from '../infra/retry';

export interface QueryClientOptions {
  /** e.g. https://us.posthog.com (the app host, not the us.i. ingestion host). */
  appHost: string;
  projectId: string;
  personalApiKey: string;
  fetch?: Fetch;
  timeoutMs?: number;
}

/** One event as the Query API returns it; `properties` still as PostHog sent it (a JSON string). */
export interface EventRow {
  uuid: string;
  event: string;
  distinctId?: string;
  properties: unknown;
  timestamp: string;
  /** The person's `email` property, when the event has a person with one. */
  personEmail?: string;
  /** The PostHog person's id (the catch-up's rows only): the webhook's `person.id`. */
  personId?: string;
}

export interface EventWindow {
  event: string;
  /** ISO timestamps; since inclusive, until exclusive. */
  since: string;
  until: string;
  pageSize?: number;
}

const DEFAULT_PAGE_SIZE = 1_000;
/** A window needing more pages than this is a runaway (a cursor that does not advance), not a backlog. */
const MAX_PAGES = 1_000;

const COLUMNS = ['uuid', 'event', 'distinct_id', 'properties', 'timestamp', 'person_email'];
const PERSON_EVENT_COLUMNS = /* @__PURE__ */ COLUMNS.concat('person_id');

/**
 * Timestamps go in as ISO strings and are read with parseDateTime64BestEffort (a HogQL function,
 * PostHog/posthog `posthog/hogql/functions`), which honours the `Z` or offset PostHog writes in its answers.
 */
const at = (name: string): string => `parseDateTime64BestEffort({${name}}, 6)`;

/**
 * A keyset query: `{after_*}` start before everything on the first page. Should PostHog ever
 * answer with a coarser timestamp than it stores, the cursor only moves back (rows are seen again
 * and deduped by uuid), never past a row.
 */
function keysetQuery(pageSize: number, columns: readonly string[], where: string, ...and: string[]): string {
  return [
    `SELECT ${columns.map((c) => (c === 'person_email' ? 'person.properties.email AS person_email' : c)).join(', ')}`,
    `FROM events`,
    `WHERE ${where}timestamp >= ${at('since')} AND timestamp < ${at('until')}`,
    `  AND (timestamp > ${at('after_timestamp')} OR (timestamp = ${at('after_timestamp')} AND toString(uuid) > {after_uuid}))`,
    ...and,
    `ORDER BY timestamp ASC, toString(uuid) ASC`,
    `LIMIT ${Math.trunc(pageSize)}`,
  ].join('\n');
}

/** The catch-up's question (lib/domain/reconcile.ts): a referral's redeemer's later events. */
export interface PersonEventWindow extends Omit<EventWindow, 'event'> {
  referralEvent: string;
  /** QUALIFY_EVENT and QUALIFY_WHERE (a HogQL boolean, already checked by qualifyWhereProblem). */
  qualify?: { event: string; where?: string; referralsSince: string };
  /** REVOKE_EVENT. */
  revoke?: { event: string; referralsSince: string };
}

/**
 * Why QUALIFY_WHERE cannot go into a query, or undefined when it can. It is the operator's own
 * HogQL (the same expression as in the destination's filter), read from the stage's settings and
 * never from an event, so this is a guard against a typo that would change the query's shape, not
 * against an attacker: the expression must stay one boolean inside the parentheses it is put in.
 * So no `;`, no comment (`--`, `/*`: either could swallow the closing parenthesis), no `{`/`}`
 * (HogQL reads `{name}` as one of the query's placeholders), quotes closed, and brackets balanced
 * without ever closing one the expression did not open. PostHog parses the rest and answers 400
 * for what it cannot (a failed run, ReconcileErrorsAlarm).
 */
export function qualifyWhereProblem(where: string): string | undefined {
  if (where.includes(';')) return 'must not contain ";"';
  const closing: Record<string, string> = { '(': ')', '[': ']' };
  const open: string[] = []; // the closing bracket each open one expects
  let quote: string | undefined;
  for (let i = 0; i < where.length; i++) {
    const c = where[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '{' || c === '}') return 'must not contain "{" or "}" (HogQL placeholders)';
    else if ((c === '-' && where[i + 1] === '-') || (c === '/' && where[i + 1] === '*')) return 'must not contain a comment';
    else if (c === '(' || c === '[') open.push(closing[c]!);
    else if ((c === ')' || c === ']') && open.pop() !== c) return `has an unbalanced "${c}"`;
  }
  if (quote) return `has an unclosed ${quote}`;
  if (open.length > 0) return `has an unclosed bracket (missing "${open[open.length - 1]}")`;
  return where.trim() === '' ? 'is empty' : undefined;
}

/**
 * The catch-up query: the qualifying (and refund) events of the window, each only for a person who
 * captured a `{referral_event}` in its lookback, so a shop's every payment is never fetched: the
 * subquery on the referral event selects the few persons the run cares about. `person_id` is the
 * person PostHog resolves the event's distinct id to (HogQL's events table: "Stable person
 * identifier resolved from distinct_id", PostHog/posthog `posthog/hogql/database/schema/events.py`),
 * the same id the webhook sends as `person.id` (`event.person_id`, PostHog/posthog
 * `nodejs/src/cdp/utils.ts` convertToHogFunctionInvocationGlobals); a subquery in `IN` is plain
 * HogQL ("SQL editor", posthog.com/docs/hogql/guide: FROM and WHERE take subqueries). Every name
 * and time goes in as a `{placeholder}` value; only QUALIFY_WHERE is text, in its own parentheses.
 */
export function personEventsQuery(pageSize: number, window: Pick<PersonEventWindow, 'qualify' | 'revoke'>): string {
  const redeemers = (since: string): string =>
    `person_id IN (SELECT person_id FROM events WHERE event = {referral_event} AND timestamp >= ${at(since)} AND timestamp < ${at('until')})`;
  const roles: string[] = [];
  if (window.qualify) {
    const where = window.qualify.where?.trim();
    roles.push(`(event = {qualify_event}${where ? ` AND (\n${where}\n)` : ''} AND ${redeemers('qualify_referrals_since')})`);
  }
  if (window.revoke) roles.push(`(event = {revoke_event} AND ${redeemers('revoke_referrals_since')})`);
  return keysetQuery(pageSize, PERSON_EVENT_COLUMNS, '', `  AND (${roles.join('\n    OR ')})`);
}

export class PostHogEventsQuery {
  public constructor(private readonly options: QueryClientOptions) {}

  /** Every `window.event` event in the window, oldest first, one page per iteration. */
  public async *pages(window: EventWindow): AsyncGenerator<EventRow[]> {
    const { event, since, until } = window;
    yield* this.keyset(window, (pageSize) => keysetQuery(pageSize, COLUMNS, 'event = {event} AND '), { event, since, until });
  }

  /** The catch-up's rows (personEventsQuery), oldest first, one page per iteration; nothing when no role is on. */
  public async *personEventPages(window: PersonEventWindow): AsyncGenerator<EventRow[]> {
    if (!window.qualify && !window.revoke) return;
    const values: Record<string, string> = { referral_event: window.referralEvent, since: window.since, until: window.until };
    if (window.qualify)
      Object.assign(values, { qualify_event: window.qualify.event, qualify_referrals_since: window.qualify.referralsSince });
    if (window.revoke) Object.assign(values, { revoke_event: window.revoke.event, revoke_referrals_since: window.revoke.referralsSince });
    yield* this.keyset(window, (pageSize) => personEventsQuery(pageSize, window), values, PERSON_EVENT_COLUMNS);
  }

  /** Pages by the keyset (timestamp, uuid) of each page's last row until a page comes back short. */
  private async *keyset(
    window: { since: string; pageSize?: number },
    query: (pageSize: number) => string,
    values: Record<string, string>,
    columns: readonly string[] = COLUMNS,
  ): AsyncGenerator<EventRow[]> {
    const pageSize = window.pageSize ?? DEFAULT_PAGE_SIZE;
    const text = query(pageSize);
    let after = { timestamp: window.since, uuid: '' };
    for (let count = 0; count < MAX_PAGES; count++) {
      const answer = await runQuery(this.options, text, { ...values, after_timestamp: after.timestamp, after_uuid: after.uuid });
      const rows = readRows(answer, columns);
      if (rows.length > 0) yield rows;
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1]!;
      after = { timestamp: last.timestamp, uuid: last.uuid };
    }
    throw new PermanentError('posthog_query_runaway', `PostHog query did not finish within ${MAX_PAGES} pages`);
  }
}

interface QueryAnswer {
  results?: unknown;
  columns?: unknown;
}

/** One HogQL query: its parsed answer, or the failure classified (429/5xx/network retryable, a refused key permanent). */
async function runQuery(options: QueryClientOptions, query: string, values: Record<string, string>): Promise<QueryAnswer> {
  const response = await fetchWithTimeout(
    options.fetch ?? fetch,
    `${options.appHost.replace(/\/+$/, '')}/api/projects/${encodeURIComponent(options.projectId)}/query/`,
    {
      method: 'POST',
      headers: { authorization: `Bearer ${options.personalApiKey}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query: { kind: 'HogQLQuery', query, values } }),
      // A redirect would carry the key elsewhere.
      redirect: 'error',
    },
    options.timeoutMs ?? 30_000,
    'PostHog query',
  );
  const text = await response.text().catch(() => '');
  const { status } = response;
  const answered = `PostHog query answered ${status}`;
  if (isRetryableStatus(status)) {
    throw new RetryableError(answered, { retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) });
  }
  if (status === 401 || status === 403) {
    throw new PermanentError(
      'posthog_query_auth',
      `PostHog refused the personal API key (${status}): it needs the query:read scope on project ${options.projectId}`,
    );
  }
  if (!response.ok) {
    const detail = redactText(text.slice(0, 300), [], [options.personalApiKey]);
    throw new PermanentError(`posthog_query_http_${status}`, `${answered}: ${detail}`);
  }
  try {
    return JSON.parse(text) as QueryAnswer;
  } catch {
    throw new PermanentError('posthog_query_shape', `${answered} with a body that is not JSON: is POSTHOG_APP_HOST the app host?`);
  }
}

/** The answer's rows and where each column is in them; every column in `required` must be there. */
function answerColumns(json: QueryAnswer, required: readonly string[]): { rows: unknown[]; index: Map<string, number> } {
  if (!Array.isArray(json.results) || !Array.isArray(json.columns)) {
    throw new PermanentError('posthog_query_shape', 'PostHog query answer has no results/columns');
  }
  const index = new Map((json.columns as unknown[]).map((name, i) => [String(name), i]));
  for (const column of required) {
    if (!index.has(column)) throw new PermanentError('posthog_query_shape', `PostHog query answer has no ${column} column`);
  }
  return { rows: json.results, index };
}

function readRows(json: QueryAnswer, columns: readonly string[]): EventRow[] {
  const { rows, index } = answerColumns(json, columns);
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  return rows.map((raw) => {
    const row = Array.isArray(raw) ? raw : [];
    const cell = (column: string): unknown => (index.has(column) ? row[index.get(column)!] : undefined);
    return {
      uuid: String(cell('uuid') ?? ''),
      event: String(cell('event') ?? ''),
      distinctId: text(cell('distinct_id')),
      properties: cell('properties'),
      timestamp: String(cell('timestamp') ?? ''),
      personEmail: text(cell('person_email')),
      personId: text(cell('person_id')),
    };
  });
}

// ── Shared device / IP (the worker's REVIEW_SHARED_DEVICE / REVIEW_SHARED_IP guards) ─────────────

/**
 * How many `$device_id` and `$ip` values both people's events carry since `{since}`, in one row.
 * A person is matched by distinct id (the one the app gave us, or the email, which apps often
 * identify with) or by the `email` person property, so the anonymous events posthog-js captured
 * before `identify` count too: they are merged into the person. posthog-js keeps `$device_id`
 * through `identify()` and `reset()` (only `reset(true)` makes a new one: PostHog docs, "Device
 * bucketing", posthog.com/docs/feature-flags/device-bucketing), so one browser used for both
 * accounts shows as one device.
 *
 * Only events that carry a `$device_id` count, for the IP too: those come from a client SDK
 * (posthog-js, the mobile SDKs). A server-side capture (posthog-node) has no `$device_id`, and its
 * `$ip` is the app backend's, shared by every user. `$ip` is absent altogether in a project with
 * "Discard client IP data" on; REVIEW_SHARED_IP then never fires.
 *
 * Every function used is in HogQL's allow-list (PostHog/posthog `posthog/hogql/functions/mapping.py`:
 * `groupUniqArrayIf` as an aggregate of two arguments, `arrayIntersect`, `notEmpty`, `lower`,
 * `toString`, `parseDateTime64BestEffort`); the people and the time go in as `values`, never spliced.
 */
export function sharedSignalsQuery(): string {
  const person = (role: string): string =>
    `(distinct_id IN ({${role}_distinct_id}, {${role}_email}) OR lower(toString(person.properties.email)) = {${role}_email})`;
  const referrer = person('referrer');
  const redeemer = person('redeemer');
  const device = `toString(properties.$device_id)`;
  const ip = `toString(properties.$ip)`;
  const both = (value: string, extra: string) =>
    `length(arrayIntersect(groupUniqArrayIf(${value}, ${referrer}${extra}), groupUniqArrayIf(${value}, ${redeemer}${extra})))`;
  return [
    `SELECT ${both(device, '')} AS shared_devices,`,
    `  ${both(ip, ` AND notEmpty(${ip})`)} AS shared_ips`,
    `FROM events`,
    `WHERE timestamp >= parseDateTime64BestEffort({since}, 6) AND notEmpty(${device})`,
    `  AND (${referrer} OR ${redeemer})`,
  ].join('\n');
}

/** Answers kept per (referrer, redeemer) pair: a redelivered referral is not asked about twice. */
const SHARED_CACHE_ENTRIES = 1_000;
const SHARED_CACHE_MS = 15 * 60_000;

/**
 * The shared-signal question for the worker. One Query API request per referral at most, and
 * none for a pair asked within 15 minutes (this container's cache), because HogQL queries with a
 * personal API key are throttled at 120 an hour by default (PostHog/posthog `posthog/rate_limit.py`,
 * HogQLQueryThrottle; 240 a minute and 2,400 an hour on the API-queries plan). A 429, a 5xx or no
 * answer is a RetryableError: the referral is retried by SQS, never paid unchecked.
 */
export class PostHogSharedSignals implements SharedSignalsPort {
  private readonly cache = new Map<string, { at: number; answer: { devices: number; ips: number } }>();

  public constructor(
    private readonly options: QueryClientOptions,
    private readonly now: () => number = Date.now,
  ) {}

  public async shared(query: { referrer: PersonRef; redeemer: PersonRef; since: string }): Promise<{ devices: number; ips: number }> {
    const people = {
      referrer_email: query.referrer.email.trim().toLowerCase(),
      // An empty distinct id matches no event: PostHog drops events without one.
      referrer_distinct_id: query.referrer.distinctId ?? '',
      redeemer_email: query.redeemer.email.trim().toLowerCase(),
      redeemer_distinct_id: query.redeemer.distinctId ?? '',
    };
    const key = JSON.stringify(Object.values(people));
    const cached = this.cache.get(key);
    if (cached && this.now() - cached.at < SHARED_CACHE_MS) return cached.answer;
    const json = await runQuery(this.options, sharedSignalsQuery(), { ...people, since: query.since });
    const { rows, index } = answerColumns(json, ['shared_devices', 'shared_ips']);
    const row = rows[0];
    const cell = (name: string): number => {
      // An aggregate over no rows is one row of zeros; no row at all is read the same way.
      const value = Array.isArray(row) ? Number(row[index.get(name)!]) : 0;
      if (!Number.isFinite(value)) throw new PermanentError('posthog_query_shape', `PostHog query answer's ${name} is not a number`);
      return value;
    };
    const answer = { devices: cell('shared_devices'), ips: cell('shared_ips') };
    if (this.cache.size >= SHARED_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { at: this.now(), answer });
    return answer;
  }
}
