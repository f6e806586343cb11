/**
 * Brings the program's insights (and optional dashboard) to their definitions. Idempotent: every
 * object is looked up by its exact name first; one that exists is left alone when it already says
 * what we want, updated (PATCH) when it does not (or skipped with --skip-existing); nothing is
 * ever created twice.
 */
import type { Fetch } from '../../lib/infra/http';
import { UsageError } from '../args';
import { PostHogApi, type RemoteDashboard, type RemoteInsight } from './api';
import {
  DEFAULT_DASHBOARD_NAME,
  DEFAULT_DATE_FROM,
  DEFAULT_EVENTS,
  MANAGED_NOTE,
  insightDefinitions,
  type InsightDefinition,
  type InsightKey,
  type ProgramEvents,
  type Qualification,
} from './definitions';

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
  /** Pay on value (QUALIFY_EVENT set): also the redeemed → qualified → rewarded funnel and the time to qualify, QUALIFY_WITHIN as their window. */
  qualification?: Qualification;
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

/** Creates or updates the insights (and optional dashboard); returns what it did to each. */
export async function ensureReferralInsights(options: InsightsOptions): Promise<InsightsReport> {
  const host = normaliseHost(options.host);
  const projectId = options.projectId.trim();
  if (!/^\d+$/.test(projectId)) {
    throw new UsageError(`--project must be the numeric project id (Project settings), not "${projectId}"`);
  }
  if (!options.apiKey?.trim()) {
    throw new UsageError('POSTHOG_PERSONAL_API_KEY is not set (a personal API key, phx_..., with insight:write)');
  }
  const events: ProgramEvents = { ...DEFAULT_EVENTS, ...stripEmpty(options.events) };
  const { qualification } = options;
  if (qualification && !(Number.isFinite(qualification.withinMs) && qualification.withinMs > 0)) {
    throw new UsageError('the qualification window (--qualify-within, QUALIFY_WITHIN) must be a duration like 30d');
  }
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

  for (const definition of insightDefinitions(events, options.dateFrom?.trim() || DEFAULT_DATE_FROM, qualification)) {
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

/** The app host, without a trailing slash; the ingestion host and plain http to a remote host are refused. */
export function normaliseHost(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError(`--host must be a URL like https://us.posthog.com, not "${raw}"`);
  }
  if (/\.i\.posthog\.com$/i.test(url.hostname)) {
    const app = url.hostname.replace(/\.i\.posthog\.com$/i, '.posthog.com');
    throw new UsageError(
      `--host ${url.origin} is PostHog's ingestion host (events only); the insights API is on the app host: https://${app}`,
    );
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new UsageError(`--host must use https (the personal API key travels in a header): ${url.origin}`);
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
