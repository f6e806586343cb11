import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenLocal, readBody, sendJson } from '../../local/http';

/** A guard against a runaway client, far above any insight this repo sends; not a PostHog limit. */
const MAX_BODY_BYTES = 1_000_000;

/**
 * A fake of PostHog's private REST API on 127.0.0.1, for ops/posthog-insights.ts: just the
 * insights and dashboards endpoints of one project. It keeps what idempotency depends on:
 * bearer personal API keys, `search` as a case-insensitive substring match on name/description
 * (so exact-name filtering is the client's job), limit/offset pagination with an absolute `next`,
 * soft-deleted objects still listed with `deleted: true`, PATCH replacing `dashboards`, and
 * defaults filled into a saved query (so a client comparing whole queries would never settle).
 */

export interface FakeInsight {
  id: number;
  short_id: string;
  name: string | null;
  derived_name: string | null;
  description: string;
  query: Record<string, unknown> | null;
  filters: Record<string, unknown>;
  dashboards: number[];
  saved: boolean;
  deleted: boolean;
  created_at: string;
  last_modified_at: string;
}

export interface FakeDashboard {
  id: number;
  name: string;
  description: string;
  deleted: boolean;
  created_at: string;
}

export interface FakePostHogRequest {
  method: string;
  path: string;
  /** The query string, e.g. `?search=...&limit=1&offset=1`. */
  query: string;
  status: number;
  authorization?: string;
}

export interface FakePostHogApiOptions {
  /** The only personal API key accepted. Default 'phx_test_key'. */
  apiKey?: string;
  /** The only project that exists. Default '4242'. */
  projectId?: string;
  /** Largest page served, whatever `limit` asks. Default 100. */
  maxPageSize?: number;
}

export interface FakePostHogApi {
  url: string;
  apiKey: string;
  projectId: string;
  insights: FakeInsight[];
  dashboards: FakeDashboard[];
  requests: FakePostHogRequest[];
  /** Stores an insight as if made in the UI (no validation); returns it. */
  seedInsight(insight: Partial<FakeInsight> & { name: string }): FakeInsight;
  seedDashboard(dashboard: Partial<FakeDashboard> & { name: string }): FakeDashboard;
  /** Every request that was not a GET (creations and updates), for assertions. */
  writes(): FakePostHogRequest[];
  reset(): void;
  close(): Promise<void>;
}

const INSIGHT_KINDS = new Set(['TrendsQuery', 'FunnelsQuery']);
// PostHog's enums for a funnel's filter (posthog/schema.py: FunnelVizType, StepOrderValue,
// FunnelConversionWindowTimeUnit); `funnelWindowInterval` is a whole number (FunnelsFilter in
// frontend/src/queries/schema/schema-general.ts). A value outside them is refused, as PostHog's
// schema validation would.
const FUNNEL_VIZ_TYPES = new Set(['steps', 'time_to_convert', 'trends']);
const FUNNEL_ORDER_TYPES = new Set(['strict', 'unordered', 'ordered']);
const FUNNEL_WINDOW_UNITS = new Set(['second', 'minute', 'hour', 'day', 'week', 'month']);

export async function startFakePostHogApi(options: FakePostHogApiOptions = {}): Promise<FakePostHogApi> {
  const apiKey = options.apiKey ?? 'phx_test_key';
  const projectId = options.projectId ?? '4242';
  const maxPageSize = options.maxPageSize ?? 100;
  const insights: FakeInsight[] = [];
  const dashboards: FakeDashboard[] = [];
  const requests: FakePostHogRequest[] = [];
  let nextId = 1;
  let origin = '';

  const now = () => new Date().toISOString();

  function makeInsight(fields: Partial<FakeInsight> & { name: string | null }): FakeInsight {
    const id = nextId++;
    return {
      id,
      short_id: `sh${id.toString(36).padStart(6, '0')}`,
      derived_name: null,
      description: '',
      query: null,
      filters: {},
      dashboards: [],
      saved: true,
      deleted: false,
      created_at: now(),
      last_modified_at: now(),
      ...fields,
    };
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: string): number {
    const url = new URL(req.url ?? '/', origin);
    const auth = req.headers.authorization;
    if (auth !== `Bearer ${apiKey}`) {
      // PostHog's shape for errors: {type, code, detail, attr}.
      return send(res, 401, {
        type: 'authentication_error',
        code: 'authentication_failed',
        detail: 'Personal API key found in request Authorization header is invalid.',
        attr: null,
      });
    }
    const match = /^\/api\/projects\/([^/]+)\/(insights|dashboards)\/(?:(\d+)\/)?$/.exec(url.pathname);
    if (!match || match[1] !== projectId) {
      return send(res, 404, { type: 'invalid_request', code: 'not_found', detail: 'Not found.', attr: null });
    }
    const [, , resource, idText] = match;
    let body: Record<string, unknown> = {};
    if (req.method === 'POST' || req.method === 'PATCH') {
      try {
        const parsed: unknown = raw ? JSON.parse(raw) : {};
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        body = parsed as Record<string, unknown>;
      } catch {
        return send(res, 400, { type: 'validation_error', code: 'parse_error', detail: 'JSON parse error', attr: null });
      }
    }

    if (resource === 'dashboards') {
      if (idText === undefined && req.method === 'GET') return list(res, url, dashboards, (d) => [d.name, d.description]);
      if (idText === undefined && req.method === 'POST') {
        if (typeof body.name !== 'string' || !body.name) return invalid(res, 'name', 'This field is required.');
        const dashboard: FakeDashboard = {
          id: nextId++,
          name: body.name,
          description: String(body.description ?? ''),
          deleted: false,
          created_at: now(),
        };
        dashboards.push(dashboard);
        return send(res, 201, dashboard);
      }
      return send(res, 405, {
        type: 'invalid_request',
        code: 'method_not_allowed',
        detail: `Method "${req.method}" not allowed.`,
        attr: null,
      });
    }

    if (idText === undefined) {
      if (req.method === 'GET') return list(res, url, insights, (i) => [i.name, i.derived_name, i.description]);
      if (req.method === 'POST') {
        const error = validateInsight(body, true);
        if (error) return invalid(res, error.attr, error.detail);
        const dashboardIds = (body.dashboards as number[] | undefined) ?? [];
        if (dashboardIds.some((id) => !dashboards.some((d) => d.id === id && !d.deleted)))
          return invalid(res, 'dashboards', 'Invalid dashboard.');
        const insight = makeInsight({
          name: typeof body.name === 'string' ? body.name : null,
          description: String(body.description ?? ''),
          query: withDefaults(body.query as Record<string, unknown>),
          dashboards: dashboardIds,
          saved: body.saved !== false,
        });
        insights.push(insight);
        return send(res, 201, insight);
      }
    } else {
      const insight = insights.find((i) => i.id === Number(idText));
      if (!insight) return send(res, 404, { type: 'invalid_request', code: 'not_found', detail: 'Not found.', attr: null });
      if (req.method === 'GET') return send(res, 200, insight);
      if (req.method === 'PATCH') {
        const error = validateInsight(body, false);
        if (error) return invalid(res, error.attr, error.detail);
        if (body.query !== undefined) insight.query = withDefaults(body.query as Record<string, unknown>);
        if (typeof body.name === 'string') insight.name = body.name;
        if (typeof body.description === 'string') insight.description = body.description;
        if (Array.isArray(body.dashboards)) insight.dashboards = body.dashboards as number[];
        insight.last_modified_at = now();
        return send(res, 200, insight);
      }
    }
    return send(res, 405, {
      type: 'invalid_request',
      code: 'method_not_allowed',
      detail: `Method "${req.method}" not allowed.`,
      attr: null,
    });
  }

  function list<T>(res: ServerResponse, url: URL, all: T[], fields: (item: T) => (string | null)[]): number {
    const search = url.searchParams.get('search')?.toLowerCase();
    const matching = search ? all.filter((item) => fields(item).some((f) => f?.toLowerCase().includes(search))) : all;
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, maxPageSize);
    const offset = Number(url.searchParams.get('offset') ?? 0) || 0;
    const results = matching.slice(offset, offset + limit);
    const pageUrl = (o: number) => {
      const u = new URL(url.toString());
      u.searchParams.set('limit', String(limit));
      u.searchParams.set('offset', String(o));
      return u.toString();
    };
    return send(res, 200, {
      count: matching.length,
      next: offset + limit < matching.length ? pageUrl(offset + limit) : null,
      previous: offset > 0 ? pageUrl(Math.max(0, offset - limit)) : null,
      results,
    });
  }

  const server = await listenLocal((req, res) => {
    void readBody(req, MAX_BODY_BYTES).then(
      ({ body, tooLarge }) => {
        let status: number;
        try {
          status = tooLarge
            ? send(res, 413, { type: 'invalid_request', code: 'too_large', detail: 'Request body too large for this fake.', attr: null })
            : handle(req, res, body.toString('utf8'));
        } catch {
          status = send(res, 500, { type: 'server_error', code: 'error', detail: 'fake internal error', attr: null });
        }
        const { pathname: path, search: query } = new URL(req.url ?? '/', origin);
        requests.push({ method: req.method ?? '', path, query, status, authorization: req.headers.authorization });
      },
      () => res.destroy(),
    );
  });
  origin = server.url;

  return {
    url: origin,
    apiKey,
    projectId,
    insights,
    dashboards,
    requests,
    seedInsight(fields) {
      const insight = makeInsight(fields);
      insights.push(insight);
      return insight;
    },
    seedDashboard(fields) {
      const dashboard: FakeDashboard = { id: nextId++, description: '', deleted: false, created_at: now(), ...fields };
      dashboards.push(dashboard);
      return dashboard;
    },
    writes() {
      return requests.filter((r) => r.method !== 'GET');
    },
    reset() {
      insights.length = 0;
      dashboards.length = 0;
      requests.length = 0;
    },
    close: server.close,
  };
}

/** Rejects what PostHog's query schema would: only InsightVizNode over trends/funnels of events here. */
function validateInsight(body: Record<string, unknown>, creating: boolean): { attr: string; detail: string } | undefined {
  if (body.filters !== undefined && body.query === undefined && creating)
    return { attr: 'query', detail: 'expected a query, got legacy filters only' };
  if (body.query === undefined) return creating ? { attr: 'query', detail: 'This field is required.' } : undefined;
  const query = body.query as Record<string, unknown> | null;
  if (!query || query.kind !== 'InsightVizNode') return { attr: 'query', detail: 'query.kind must be InsightVizNode' };
  const source = query.source as Record<string, unknown> | undefined;
  if (!source || typeof source.kind !== 'string' || !INSIGHT_KINDS.has(source.kind))
    return { attr: 'query', detail: 'query.source.kind must be TrendsQuery or FunnelsQuery' };
  const series = source.series;
  if (!Array.isArray(series) || series.length === 0) return { attr: 'query', detail: 'query.source.series must not be empty' };
  if (source.kind === 'FunnelsQuery' && series.length < 2) return { attr: 'query', detail: 'a funnel needs at least two steps' };
  for (const node of series as Record<string, unknown>[]) {
    if (node?.kind !== 'EventsNode' || typeof node.event !== 'string' || !node.event)
      return { attr: 'query', detail: 'each series entry must be an EventsNode with an event' };
  }
  const funnel = source.funnelsFilter as Record<string, unknown> | undefined;
  if (funnel !== undefined) {
    if (source.kind !== 'FunnelsQuery') return { attr: 'query', detail: 'funnelsFilter belongs to a FunnelsQuery' };
    if (funnel.funnelVizType !== undefined && !FUNNEL_VIZ_TYPES.has(String(funnel.funnelVizType)))
      return { attr: 'query', detail: 'funnelsFilter.funnelVizType must be steps, time_to_convert or trends' };
    if (funnel.funnelOrderType !== undefined && !FUNNEL_ORDER_TYPES.has(String(funnel.funnelOrderType)))
      return { attr: 'query', detail: 'funnelsFilter.funnelOrderType must be strict, unordered or ordered' };
    if (funnel.funnelWindowIntervalUnit !== undefined && !FUNNEL_WINDOW_UNITS.has(String(funnel.funnelWindowIntervalUnit)))
      return { attr: 'query', detail: 'funnelsFilter.funnelWindowIntervalUnit must be second, minute, hour, day, week or month' };
    const interval = funnel.funnelWindowInterval;
    if (interval !== undefined && !(Number.isInteger(interval) && (interval as number) > 0))
      return { attr: 'query', detail: 'funnelsFilter.funnelWindowInterval must be a positive whole number' };
  }
  if (body.dashboards !== undefined && (!Array.isArray(body.dashboards) || body.dashboards.some((d) => typeof d !== 'number'))) {
    return { attr: 'dashboards', detail: 'Expected a list of dashboard ids.' };
  }
  return undefined;
}

/** What PostHog's serializer adds on save, roughly: defaults the client never sent. */
function withDefaults(query: Record<string, unknown>): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(query)) as Record<string, unknown>;
  const source = copy.source as Record<string, unknown>;
  source.filterTestAccounts ??= false;
  source.properties ??= [];
  if (source.kind === 'TrendsQuery') source.interval ??= 'day';
  return copy;
}

function invalid(res: ServerResponse, attr: string, detail: string): number {
  return send(res, 400, { type: 'validation_error', code: 'invalid_input', detail, attr });
}

function send(res: ServerResponse, status: number, body: unknown): number {
  sendJson(res, status, body);
  return status;
}
