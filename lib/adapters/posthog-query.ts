/**
 * PostHog's Query API, just the one question the reconciler asks: "which `REFERRAL_EVENT` events
 * happened in this window?", page by page.
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
 * - The query endpoint is rate limited per key (the documented figure differs between PostHog's
 *   pages, 120 to 2,400 requests an hour: *unconfirmed*): one run is one request per 1,000 rows,
 *   every 15 min, far inside either; a 429 is retryable and honours Retry-After.
 */
import { PermanentError, RetryableError } from '../domain/errors';
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
}

export interface EventWindow {
  event: string;
  /** ISO timestamps; since inclusive, until exclusive. */
  since: string;
  until: string;
  pageSize?: number;
}

export const DEFAULT_PAGE_SIZE = 1_000;
/** A window needing more pages than this is a runaway (a cursor that does not advance), not a backlog. */
const MAX_PAGES = 1_000;

const COLUMNS = ['uuid', 'event', 'distinct_id', 'properties', 'timestamp', 'person_email'] as const;

/**
 * The keyset query. `{after_*}` start before everything on the first page. Timestamps go in as
 * ISO strings and are read with parseDateTime64BestEffort (a HogQL function, PostHog/posthog
 * `posthog/hogql/functions`), which honours the `Z` or offset PostHog writes in its answers.
 * Should PostHog ever answer with a coarser timestamp than it stores, the cursor only moves back
 * (rows are seen again and deduped by uuid), never past a row.
 */
export function referralEventsQuery(pageSize: number): string {
  const at = (name: string): string => `parseDateTime64BestEffort({${name}}, 6)`;
  return [
    `SELECT uuid, event, distinct_id, properties, timestamp, person.properties.email AS person_email`,
    `FROM events`,
    `WHERE event = {event} AND timestamp >= ${at('since')} AND timestamp < ${at('until')}`,
    `  AND (timestamp > ${at('after_timestamp')} OR (timestamp = ${at('after_timestamp')} AND toString(uuid) > {after_uuid}))`,
    `ORDER BY timestamp ASC, toString(uuid) ASC`,
    `LIMIT ${Math.trunc(pageSize)}`,
  ].join('\n');
}

export class PostHogEventsQuery {
  private readonly fetch: Fetch;
  private readonly url: string;

  public constructor(private readonly options: QueryClientOptions) {
    this.fetch = options.fetch ?? fetch;
    this.url = `${options.appHost.replace(/\/+$/, '')}/api/projects/${encodeURIComponent(options.projectId)}/query/`;
  }

  /** Every event in the window, oldest first, one page per iteration. */
  public async *pages(window: EventWindow): AsyncGenerator<EventRow[]> {
    const pageSize = window.pageSize ?? DEFAULT_PAGE_SIZE;
    let after = { timestamp: window.since, uuid: '' };
    for (let page = 0; page < MAX_PAGES; page++) {
      const rows = await this.page(window, pageSize, after);
      if (rows.length > 0) yield rows;
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1]!;
      after = { timestamp: last.timestamp, uuid: last.uuid };
    }
    throw new PermanentError('posthog_query_runaway', `PostHog query did not finish within ${MAX_PAGES} pages`);
  }

  private async page(window: EventWindow, pageSize: number, after: { timestamp: string; uuid: string }): Promise<EventRow[]> {
    const body = {
      query: {
        kind: 'HogQLQuery',
        query: referralEventsQuery(pageSize),
        values: { event: window.event, since: window.since, until: window.until, after_timestamp: after.timestamp, after_uuid: after.uuid },
      },
    };
    const response = await fetchWithTimeout(
      this.fetch,
      this.url,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.personalApiKey}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        // A redirect would carry the key elsewhere.
        redirect: 'error',
      },
      this.options.timeoutMs ?? 30_000,
      'PostHog query',
    );
    const text = await response.text().catch(() => '');
    if (!response.ok) throw this.failure(response, text);
    let json: { results?: unknown; columns?: unknown };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new PermanentError('posthog_query_shape', `PostHog query answered ${response.status} with a body that is not JSON: is POSTHOG_APP_HOST the app host?`);
    }
    return readRows(json);
  }

  private failure(response: Response, text: string): Error {
    const detail = redactText(text.slice(0, 300), [], [this.options.personalApiKey]);
    if (isRetryableStatus(response.status)) {
      return new RetryableError(`PostHog query answered ${response.status}`, { retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) });
    }
    if (response.status === 401 || response.status === 403) {
      return new PermanentError(
        'posthog_query_auth',
        `PostHog refused the personal API key (${response.status}): it needs the query:read scope on project ${this.options.projectId}`,
      );
    }
    return new PermanentError(`posthog_query_http_${response.status}`, `PostHog query answered ${response.status}: ${detail}`);
  }
}

function readRows(json: { results?: unknown; columns?: unknown }): EventRow[] {
  if (!Array.isArray(json.results) || !Array.isArray(json.columns)) {
    throw new PermanentError('posthog_query_shape', 'PostHog query answer has no results/columns');
  }
  const index = new Map((json.columns as unknown[]).map((name, i) => [String(name), i]));
  for (const column of COLUMNS) {
    if (!index.has(column)) throw new PermanentError('posthog_query_shape', `PostHog query answer has no ${column} column`);
  }
  const cell = (row: unknown[], column: (typeof COLUMNS)[number]): unknown => row[index.get(column)!];
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  return (json.results as unknown[]).map((raw) => {
    const row = Array.isArray(raw) ? raw : [];
    return {
      uuid: String(cell(row, 'uuid') ?? ''),
      event: String(cell(row, 'event') ?? ''),
      distinctId: text(cell(row, 'distinct_id')),
      properties: cell(row, 'properties'),
      timestamp: String(cell(row, 'timestamp') ?? ''),
      personEmail: text(cell(row, 'person_email')),
    };
  });
}
