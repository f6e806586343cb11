import { PermanentError, RetryableError } from '../../lib/domain/errors';
import { PostHogEventsQuery, type EventRow } from '../../lib/adapters/posthog-query';
import { failure } from '../support/failure';

const COLUMNS = ['uuid', 'event', 'distinct_id', 'properties', 'timestamp', 'person_email'];
const row = (n: number) => [
  `0190b6c2-6f1e-7c3a-9d7e-00000000000${n}`,
  'referral redeemed',
  `d${n}`,
  '{}',
  `2026-07-01T00:0${n}:00.000Z`,
  null,
];
const WINDOW = { event: 'referral redeemed', since: '2026-07-01T00:00:00.000Z', until: '2026-07-02T00:00:00.000Z' };

function fakeFetch(answers: { status: number; body: unknown; headers?: Record<string, string> }[]) {
  const requests: { url: string; init: RequestInit; body: any }[] = [];
  const impl = (async (url: string, init: RequestInit) => {
    requests.push({ url, init, body: JSON.parse(String(init.body)) });
    const answer = answers.shift() ?? { status: 200, body: { columns: COLUMNS, results: [] } };
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: answer.headers });
  }) as unknown as typeof fetch;
  return { impl, requests };
}

const client = (fetchImpl: typeof fetch) =>
  new PostHogEventsQuery({ appHost: 'https://us.posthog.com/', projectId: '42', personalApiKey: 'phx_secret', fetch: fetchImpl });

async function all(pages: AsyncIterable<EventRow[]>): Promise<EventRow[]> {
  const rows: EventRow[] = [];
  for await (const page of pages) rows.push(...page);
  return rows;
}

describe('PostHogEventsQuery', () => {
  it('asks the project query endpoint with the personal key and a HogQLQuery whose values carry the window', async () => {
    // Prepare
    const fetch = fakeFetch([{ status: 200, body: { columns: COLUMNS, results: [row(1)], hasMore: false } }]);

    // Act
    await all(client(fetch.impl).pages(WINDOW));

    // Assess
    const [request] = fetch.requests;
    expect(request!.url).toBe('https://us.posthog.com/api/projects/42/query/');
    expect((request!.init.headers as Record<string, string>).authorization).toBe('Bearer phx_secret');
    expect(request!.body.query.kind).toBe('HogQLQuery');
    expect(request!.body.query.values).toMatchObject({ event: 'referral redeemed', since: WINDOW.since, until: WINDOW.until });
    // The event name is a value, never spliced into the SQL.
    expect(request!.body.query.query).not.toContain('referral redeemed');
  });

  it("pages by the last row's (timestamp, uuid) until a page comes back short", async () => {
    // Prepare
    const fetch = fakeFetch([
      { status: 200, body: { columns: COLUMNS, results: [row(1), row(2)], hasMore: true } },
      { status: 200, body: { columns: COLUMNS, results: [row(3)], hasMore: false } },
    ]);

    // Act
    const rows = await all(client(fetch.impl).pages({ ...WINDOW, pageSize: 2 }));

    // Assess
    expect(rows.map((r) => r.distinctId)).toEqual(['d1', 'd2', 'd3']);
    expect(fetch.requests).toHaveLength(2);
    expect(fetch.requests[1]!.body.query.values).toMatchObject({ after_timestamp: row(2)[4], after_uuid: row(2)[0] });
    expect(fetch.requests[0]!.body.query.query).toMatch(/LIMIT 2$/);
  });

  it('treats 429 as retryable, with Retry-After', async () => {
    // Prepare
    const fetch = fakeFetch([{ status: 429, body: { detail: 'throttled' }, headers: { 'retry-after': '7' } }]);

    // Act
    const error = await failure(all(client(fetch.impl).pages(WINDOW)));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(7_000);
  });

  it('names the query:read scope when the key is refused, without quoting the key', async () => {
    // Prepare
    const fetch = fakeFetch([{ status: 403, body: { detail: 'phx_secret lacks scope' } }]);

    // Act
    const error = await failure(all(client(fetch.impl).pages(WINDOW)));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain('query:read');
    expect(error.message).not.toContain('phx_secret');
  });

  it('refuses an answer without the columns it asked for', async () => {
    // Prepare
    const fetch = fakeFetch([{ status: 200, body: { columns: ['uuid'], results: [['x']] } }]);

    // Act
    const error = await failure(all(client(fetch.impl).pages(WINDOW)));

    // Assess
    expect((error as PermanentError).reason).toBe('posthog_query_shape');
  });
});
