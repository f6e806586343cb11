/**
 * Creates (or brings up to date) the PostHog insights that track the referral program:
 *
 *   1. a trend of `referral redeemed`, `referral reward fulfilled` and `referral reward rejected` per day,
 *      with the reward lifecycle's `referral reward held`, `… released` and `… revoked` (README "Reward lifecycle");
 *   2. a trend of `referral reward rejected` broken down by its `reason` property;
 *   3. a funnel `referral redeemed` → `referral reward fulfilled`;
 *
 * and, with --dashboard, a dashboard holding the three. Idempotent: every object is looked up by
 * its exact name first; one that exists is left alone when it already says what we want, updated
 * (PATCH) when it does not (or skipped with --skip-existing); nothing is ever created twice.
 *
 *   POSTHOG_PERSONAL_API_KEY=phx_... npx tsx ops/posthog-insights.ts --host https://us.posthog.com --project 12345
 *
 * Standalone on purpose (`npm run ops` belongs to the operations CLI). Uses PostHog's private REST
 * API (`/api/projects/:project_id/insights/`, `/dashboards/`) with the `query` field
 * (`InsightVizNode` wrapping a `TrendsQuery` / `FunnelsQuery`), not the legacy `filters`.
 * The personal API key needs the `insight:write` scope (plus `dashboard:write` for --dashboard).
 * The key is only ever sent in the Authorization header; it is never printed.
 */

import type { Fetch } from '../lib/http';

const DEFAULT_EVENTS = {
  redeemed: 'referral redeemed',
  fulfilled: 'referral reward fulfilled',
  rejected: 'referral reward rejected',
} as const;

/** Captured by the reward lifecycle (lib/lifecycle/capture.ts); names fixed by this service, not configurable. */
const LIFECYCLE_EVENTS = ['referral reward held', 'referral reward released', 'referral reward revoked'] as const;

export const DEFAULT_DASHBOARD_NAME = 'Referral rewards';
const DEFAULT_DATE_FROM = '-30d';
const REQUEST_TIMEOUT_MS = 15_000;
/** Pages followed when listing; a project with more same-named objects than this is not ours to fix. */
const MAX_PAGES = 50;

export interface ProgramEvents {
  redeemed: string;
  fulfilled: string;
  rejected: string;
}

export interface InsightsOptions {
  /** PostHog app host (private API): https://us.posthog.com, https://eu.posthog.com or self-hosted. */
  host: string;
  projectId: string;
  /** Personal API key (phx_...). */
  apiKey: string;
  fetch: Fetch;
  events?: Partial<ProgramEvents>;
  /** Relative date PostHog understands, e.g. -30d, -12w. */
  dateFrom?: string;
  /** Name of a dashboard to hold the insights; undefined: no dashboard. */
  dashboard?: string;
  /** Leave existing insights as they are, even when they differ from the definition. */
  skipExisting?: boolean;
  /** Look everything up, change nothing. */
  dryRun?: boolean;
  /** Progress lines (never contain the key). */
  log?: (line: string) => void;
}

export type Action = 'created' | 'updated' | 'unchanged' | 'skipped' | 'would-create' | 'would-update';

export interface InsightResult {
  key: InsightKey;
  name: string;
  action: Action;
  id?: number;
  shortId?: string;
}

export interface InsightsReport {
  host: string;
  projectId: string;
  insights: InsightResult[];
  dashboard?: { name: string; action: Action; id?: number };
}

export type InsightKey = 'outcomes' | 'rejections' | 'funnel';

export interface InsightDefinition {
  key: InsightKey;
  name: string;
  description: string;
  query: Record<string, unknown>;
}

/** A refusal from PostHog (or a request that never reached it), worded for the operator. */
export class PostHogApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PostHogApiError';
  }
}

/** Bad options (before any request is sent). */
export class InsightsUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InsightsUsageError';
  }
}

const MANAGED_NOTE = 'Managed by referral-rewards ops/posthog-insights.ts: re-running it restores this definition.';

const eventsNode = (event: string) => ({ kind: 'EventsNode', event, name: event, math: 'total' });

/** The three insights, as PostHog query objects (InsightVizNode + TrendsQuery / FunnelsQuery). */
function insightDefinitions(events: ProgramEvents, dateFrom: string = DEFAULT_DATE_FROM): InsightDefinition[] {
  return [
    {
      key: 'outcomes',
      name: 'Referral rewards: redeemed vs fulfilled vs rejected',
      description: `Daily count of "${events.redeemed}", "${events.fulfilled}" and "${events.rejected}". ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'TrendsQuery',
          series: [eventsNode(events.redeemed), eventsNode(events.fulfilled), eventsNode(events.rejected), ...LIFECYCLE_EVENTS.map(eventsNode)],
          interval: 'day',
          dateRange: { date_from: dateFrom },
          trendsFilter: { display: 'ActionsLineGraph' },
        },
      },
    },
    {
      key: 'rejections',
      name: 'Referral rewards: rejected by reason',
      description:
        `Daily count of "${events.rejected}" broken down by its reason property ` +
        `(self_referral, redeemer_already_rewarded, referrer_cap_reached, blocked_domain). ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'TrendsQuery',
          series: [eventsNode(events.rejected)],
          interval: 'day',
          dateRange: { date_from: dateFrom },
          breakdownFilter: { breakdown: 'reason', breakdown_type: 'event' },
          trendsFilter: { display: 'ActionsBar' },
        },
      },
    },
    {
      key: 'funnel',
      name: 'Referral rewards: redeemed → fulfilled funnel',
      description:
        `Share of people who did "${events.redeemed}" and then got "${events.fulfilled}" within 14 days. ` +
        `Both events must carry the redeemer's distinct id. ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'FunnelsQuery',
          series: [
            { kind: 'EventsNode', event: events.redeemed, name: events.redeemed },
            { kind: 'EventsNode', event: events.fulfilled, name: events.fulfilled },
          ],
          dateRange: { date_from: dateFrom },
          funnelsFilter: {
            funnelVizType: 'steps',
            funnelOrderType: 'ordered',
            funnelWindowInterval: 14,
            funnelWindowIntervalUnit: 'day',
          },
        },
      },
    },
  ];
}

interface RemoteInsight {
  id: number;
  short_id?: string;
  name?: string | null;
  description?: string | null;
  query?: unknown;
  dashboards?: number[];
  deleted?: boolean;
}

interface RemoteDashboard {
  id: number;
  name?: string | null;
  deleted?: boolean;
}

interface Page<T> {
  results?: T[];
  next?: string | null;
}

/** Creates or updates the insights (and optional dashboard); returns what it did to each. */
export async function ensureReferralInsights(options: InsightsOptions): Promise<InsightsReport> {
  const host = normaliseHost(options.host);
  const projectId = options.projectId.trim();
  if (!/^\d+$/.test(projectId)) {
    throw new InsightsUsageError(`--project must be the numeric project id (Project settings), not "${projectId}"`);
  }
  if (!options.apiKey?.trim()) {
    throw new InsightsUsageError('POSTHOG_PERSONAL_API_KEY is not set (a personal API key, phx_..., with insight:write)');
  }
  const events: ProgramEvents = { ...DEFAULT_EVENTS, ...stripEmpty(options.events) };
  const log = options.log ?? (() => undefined);
  const api = new PostHogApi(host, projectId, options.apiKey.trim(), options.fetch);
  const report: InsightsReport = { host, projectId, insights: [] };

  let dashboardId: number | undefined;
  if (options.dashboard !== undefined) {
    const name = options.dashboard.trim() || DEFAULT_DASHBOARD_NAME;
    const existing = (await api.listAll<RemoteDashboard>('dashboards', name)).filter((d) => d.name === name && !d.deleted);
    if (existing.length > 0) {
      dashboardId = existing[0].id;
      report.dashboard = { name, action: 'unchanged', id: dashboardId };
    } else if (options.dryRun) {
      report.dashboard = { name, action: 'would-create' };
    } else {
      const created = await api.send<RemoteDashboard>('POST', 'dashboards/', {
        name,
        description: `Referral program: redeemed, fulfilled and rejected referrals. ${MANAGED_NOTE}`,
      });
      dashboardId = created.id;
      report.dashboard = { name, action: 'created', id: dashboardId };
    }
    log(`${pad(report.dashboard.action)} dashboard "${name}"${dashboardId !== undefined ? ` (id ${dashboardId})` : ''}`);
  }

  for (const definition of insightDefinitions(events, options.dateFrom?.trim() || DEFAULT_DATE_FROM)) {
    const result = await ensureInsight(api, definition, dashboardId, options);
    report.insights.push(result);
    const where = result.id !== undefined ? ` (id ${result.id}${result.shortId ? `, ${result.shortId}` : ''})` : '';
    log(`${pad(result.action)} insight "${definition.name}"${where}`);
  }
  return report;
}

async function ensureInsight(
  api: PostHogApi,
  definition: InsightDefinition,
  dashboardId: number | undefined,
  options: InsightsOptions,
): Promise<InsightResult> {
  const base = { key: definition.key, name: definition.name };
  // `search` is a case-insensitive substring match on name/description/tags: keep exact names only.
  const matches = (await api.listAll<RemoteInsight>('insights', definition.name))
    .filter((i) => i.name === definition.name && !i.deleted)
    .sort((a, b) => a.id - b.id);

  if (matches.length === 0) {
    if (options.dryRun) return { ...base, action: 'would-create' };
    const created = await api.send<RemoteInsight>('POST', 'insights/', {
      name: definition.name,
      description: definition.description,
      query: definition.query,
      saved: true,
      ...(dashboardId !== undefined ? { dashboards: [dashboardId] } : {}),
    });
    return { ...base, action: 'created', id: created.id, shortId: created.short_id };
  }

  const current = matches[0];
  const ids = { id: current.id, shortId: current.short_id };
  const dashboards = current.dashboards ?? [];
  const onDashboard = dashboardId === undefined || dashboards.includes(dashboardId);
  // PostHog fills in defaults when it saves a query, so "the same" means: everything we set is there.
  const sameDefinition = contains(current.query, definition.query) && (current.description ?? '') === definition.description;
  if (sameDefinition && onDashboard) return { ...base, action: 'unchanged', ...ids };
  if (options.skipExisting) {
    if (!onDashboard && !options.dryRun) {
      // Only the dashboard membership: the user's edits to the insight stay.
      await api.send('PATCH', `insights/${current.id}/`, { dashboards: [...dashboards, dashboardId] });
      return { ...base, action: 'updated', ...ids };
    }
    return { ...base, action: onDashboard ? 'skipped' : 'would-update', ...ids };
  }
  if (options.dryRun) return { ...base, action: 'would-update', ...ids };
  await api.send('PATCH', `insights/${current.id}/`, {
    description: definition.description,
    query: definition.query,
    // The field replaces the list: keep the dashboards the insight is already on.
    ...(onDashboard ? {} : { dashboards: [...dashboards, dashboardId] }),
  });
  return { ...base, action: 'updated', ...ids };
}

/** The private REST API of one project, with errors an operator can act on. */
class PostHogApi {
  private readonly base: string;

  constructor(
    private readonly host: string,
    private readonly projectId: string,
    private readonly apiKey: string,
    private readonly fetchImpl: Fetch,
  ) {
    this.base = `${host}/api/projects/${projectId}/`;
  }

  /** Every object of a list endpoint matching `search`, following `next` on the same origin only. */
  async listAll<T>(resource: 'insights' | 'dashboards', search: string): Promise<T[]> {
    const first = new URL(`${resource}/`, this.base);
    first.searchParams.set('search', search);
    first.searchParams.set('limit', '100');
    const out: T[] = [];
    let url: string | null | undefined = first.toString();
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const body: Page<T> = await this.request<Page<T>>('GET', url);
      out.push(...(Array.isArray(body.results) ? body.results : []));
      url = body.next ? this.sameOrigin(body.next) : undefined;
    }
    return out;
  }

  send<T = unknown>(method: 'POST' | 'PATCH', path: string, body: unknown): Promise<T> {
    return this.request<T>(method, new URL(path, this.base).toString(), body);
  }

  /** A `next` link elsewhere would carry the key to another host: refuse it. */
  private sameOrigin(link: string): string {
    const url = new URL(link, this.base);
    if (url.origin !== new URL(this.host).origin) {
      throw new PostHogApiError(`PostHog answered with a next page on another origin (${url.origin}); not following it`);
    }
    return url.toString();
  }

  private async request<T>(method: string, url: string, body?: unknown): Promise<T> {
    const what = `${method} ${new URL(url).pathname}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers: {
          Authorization: `Bearer ${this.apiKey}`,
          Accept: 'application/json',
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        redirect: 'error',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const name = (error as { name?: unknown } | null)?.name;
      const reason = name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : 'network error';
      throw new PostHogApiError(`${what}: ${reason} reaching ${this.host} — check --host`);
    }
    const text = await response.text();
    if (!response.ok) throw new PostHogApiError(this.explain(response.status, what, text), response.status);
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      throw new PostHogApiError(`${what}: PostHog answered ${response.status} with a body that is not JSON — is ${this.host} the PostHog app host?`);
    }
  }

  private explain(status: number, what: string, text: string): string {
    const detail = this.detail(text);
    const suffix = detail ? ` (PostHog: ${detail})` : '';
    switch (status) {
      case 401:
        return `PostHog rejected the personal API key (401 on ${what})${suffix}. Check POSTHOG_PERSONAL_API_KEY: a personal API key (phx_...), not the project API key (phc_...), for the region of --host.`;
      case 403:
        return `PostHog refused ${what} (403)${suffix}. The personal API key needs the insight:write scope (dashboard:write with --dashboard) and access to project ${this.projectId}.`;
      case 404:
        return `PostHog has no ${what} (404)${suffix}. Check --project ${this.projectId} and --host ${this.host} (US https://us.posthog.com, EU https://eu.posthog.com).`;
      case 429:
        return `PostHog rate-limited ${what} (429)${suffix}. Wait a minute and run again: the command is idempotent.`;
      default:
        return `PostHog answered ${status} to ${what}${suffix}.`;
    }
  }

  /** PostHog's `{"detail": ...}` (or `attr`), short, with the key scrubbed should it ever be echoed. */
  private detail(text: string): string {
    let detail = '';
    try {
      const json = JSON.parse(text) as { detail?: unknown; attr?: unknown };
      if (typeof json.detail === 'string') detail = json.detail + (typeof json.attr === 'string' ? ` [${json.attr}]` : '');
    } catch {
      detail = text.trim().startsWith('<') ? '' : text.trim();
    }
    return detail.split(this.apiKey).join('***').slice(0, 300);
  }
}

/** The app host, without a trailing slash; the ingestion host and plain http to a remote host are refused. */
function normaliseHost(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new InsightsUsageError(`--host must be a URL like https://us.posthog.com, not "${raw}"`);
  }
  if (/\.i\.posthog\.com$/i.test(url.hostname)) {
    const app = url.hostname.replace(/\.i\.posthog\.com$/i, '.posthog.com');
    throw new InsightsUsageError(
      `--host ${url.origin} is PostHog's ingestion host (events only); the insights API is on the app host: https://${app}`,
    );
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new InsightsUsageError(`--host must use https (the personal API key travels in a header): ${url.origin}`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Whether `actual` holds everything in `expected` (objects: every key; arrays: same length, element-wise). */
export function contains(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => contains(actual[i], e));
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const a = actual as Record<string, unknown>;
    return Object.entries(expected as Record<string, unknown>).every(([k, v]) => contains(a[k], v));
  }
  return actual === expected;
}

function stripEmpty(events: Partial<ProgramEvents> | undefined): Partial<ProgramEvents> {
  const out: Partial<ProgramEvents> = {};
  for (const [k, v] of Object.entries(events ?? {})) {
    if (typeof v === 'string' && v.trim()) out[k as keyof ProgramEvents] = v.trim();
  }
  return out;
}

const pad = (action: string) => action.padEnd(12);

// ---------------------------------------------------------------------------------------------
// CLI

export const USAGE = `usage: npx tsx ops/posthog-insights.ts --project <id> [options]

Creates or updates the referral program insights in PostHog (idempotent: safe to re-run).

  --host <url>            PostHog app host (default https://us.posthog.com; EU https://eu.posthog.com)
  --project <id>          numeric project id (Project settings)
  --dashboard [name]      also put them on a dashboard (default name "${DEFAULT_DASHBOARD_NAME}")
  --skip-existing         leave insights that already exist as they are
  --dry-run               look up only; change nothing
  --date-from <range>     default ${DEFAULT_DATE_FROM}
  --redeemed-event <name> default $REFERRAL_EVENT or "${DEFAULT_EVENTS.redeemed}"
  --fulfilled-event <name>, --rejected-event <name>
env: POSTHOG_PERSONAL_API_KEY (required; scopes insight:write, + dashboard:write for --dashboard)
exit: 0 done, 1 PostHog refused or failed, 2 usage`;

export interface CliIo {
  fetch: Fetch;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Parses argv, runs, prints; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function runCli(argv: string[], env: Record<string, string | undefined>, io: CliIo): Promise<number> {
  let options: Omit<InsightsOptions, 'fetch' | 'log' | 'apiKey'>;
  try {
    const parsed = parseArgs(argv, env);
    if (parsed === 'help') {
      io.out(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    io.err(`✖ ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const apiKey = env.POSTHOG_PERSONAL_API_KEY ?? '';
  try {
    io.out(`PostHog project ${options.projectId} at ${options.host}${options.dryRun ? ' (dry run)' : ''}`);
    const report = await ensureReferralInsights({ ...options, apiKey, fetch: io.fetch, log: (line) => io.out(`  ${line}`) });
    const created = report.insights.filter((i) => i.action === 'created').length;
    const updated = report.insights.filter((i) => i.action === 'updated').length;
    io.out(`done: ${created} created, ${updated} updated, ${report.insights.length - created - updated} left as they were`);
    return 0;
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    io.err(`✖ ${apiKey ? message.split(apiKey).join('***') : message}`);
    return error instanceof InsightsUsageError ? 2 : 1;
  }
}

function parseArgs(argv: string[], env: Record<string, string | undefined>): Omit<InsightsOptions, 'fetch' | 'log' | 'apiKey'> | 'help' {
  let host = 'https://us.posthog.com';
  let projectId: string | undefined;
  let dashboard: string | undefined;
  let skipExisting = false;
  let dryRun = false;
  let dateFrom: string | undefined;
  const events: Partial<ProgramEvents> = { redeemed: env.REFERRAL_EVENT };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new InsightsUsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const take = (): string => inline ?? value(i++, flag);
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--host':
        host = take();
        break;
      case '--project':
        projectId = take();
        break;
      case '--dashboard':
        if (inline !== undefined) dashboard = inline;
        else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) dashboard = argv[++i];
        else dashboard = DEFAULT_DASHBOARD_NAME;
        break;
      case '--skip-existing':
        skipExisting = true;
        break;
      case '--dry-run':
        dryRun = true;
        break;
      case '--date-from':
        dateFrom = take();
        break;
      case '--redeemed-event':
        events.redeemed = take();
        break;
      case '--fulfilled-event':
        events.fulfilled = take();
        break;
      case '--rejected-event':
        events.rejected = take();
        break;
      default:
        throw new InsightsUsageError(`unknown argument ${arg}`);
    }
  }
  if (!projectId) throw new InsightsUsageError('--project <id> is required');
  // Checked here so a bad host is a usage error before anything else happens.
  return { host: normaliseHost(host), projectId, dashboard, skipExisting, dryRun, dateFrom, events };
}

if (require.main === module) {
  runCli(process.argv.slice(2), process.env, {
    fetch: globalThis.fetch,
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`✖ unexpected: ${(error as Error)?.message ?? String(error)}`);
      process.exitCode = 1;
    },
  );
}
