/**
 * PostHog's private REST API of one project (`/api/projects/:project_id/insights/`, `/dashboards/`),
 * with errors an operator can act on. The personal API key is only ever sent in the Authorization
 * header, never followed to another origin, and scrubbed from any detail PostHog echoes.
 */
import type { Fetch } from '../../lib/infra/http';

const REQUEST_TIMEOUT_MS = 15_000;
/** Pages followed when listing; a project with more same-named objects than this is not ours to fix. */
const MAX_PAGES = 50;

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

export interface RemoteInsight {
  id: number;
  short_id?: string;
  name?: string | null;
  description?: string | null;
  query?: unknown;
  dashboards?: number[];
  deleted?: boolean;
}

export interface RemoteDashboard {
  id: number;
  name?: string | null;
  deleted?: boolean;
}

interface Page<T> {
  results?: T[];
  next?: string | null;
}

/** The private REST API of one project, with errors an operator can act on. */
export class PostHogApi {
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
      throw new PostHogApiError(
        `${what}: PostHog answered ${response.status} with a body that is not JSON — is ${this.host} the PostHog app host?`,
      );
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
