import { PostHogEventsQuery, personEventsQuery, qualifyWhereProblem, type EventRow } from '../../lib/adapters/posthog-query';
import { personEventsInLedger } from '../../lib/adapters/dynamodb/reconciler-ledger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';

const COLUMNS = ['uuid', 'event', 'distinct_id', 'properties', 'timestamp', 'person_email', 'person_id'];
const WINDOW = {
  referralEvent: 'referral redeemed',
  qualify: { event: 'subscription paid', where: 'toFloat(properties.amount) >= 20', referralsSince: '2026-06-01T00:00:00.000Z' },
  revoke: { event: 'subscription refunded', referralsSince: '2026-01-01T00:00:00.000Z' },
  since: '2026-07-01T00:00:00.000Z',
  until: '2026-07-02T00:00:00.000Z',
};

function fakeFetch(answers: unknown[]) {
  const requests: any[] = [];
  const impl = (async (_url: string, init: RequestInit) => {
    requests.push(JSON.parse(String(init.body)));
    return new Response(JSON.stringify(answers.shift() ?? { columns: COLUMNS, results: [] }), { status: 200 });
  }) as unknown as typeof fetch;
  return { impl, requests };
}

async function all(pages: AsyncIterable<EventRow[]>): Promise<EventRow[]> {
  const rows: EventRow[] = [];
  for await (const page of pages) rows.push(...page);
  return rows;
}

const client = (fetchImpl: typeof fetch) =>
  new PostHogEventsQuery({ appHost: 'https://us.posthog.com', projectId: '42', personalApiKey: 'phx_secret', fetch: fetchImpl });

describe('the catch-up query', () => {
  it('names events and times as placeholder values, never in the SQL, and keeps QUALIFY_WHERE in its own parentheses', async () => {
    // Prepare
    const fetch = fakeFetch([]);

    // Act
    await all(client(fetch.impl).personEventPages(WINDOW));

    // Assess
    const { query, values } = fetch.requests[0].query;
    expect(values).toMatchObject({
      referral_event: 'referral redeemed',
      qualify_event: 'subscription paid',
      revoke_event: 'subscription refunded',
      qualify_referrals_since: WINDOW.qualify.referralsSince,
      revoke_referrals_since: WINDOW.revoke.referralsSince,
      since: WINDOW.since,
      until: WINDOW.until,
    });
    for (const literal of ['referral redeemed', 'subscription paid', 'subscription refunded', '2026-'])
      expect(query).not.toContain(literal);
    expect(query).toContain('AND (\ntoFloat(properties.amount) >= 20\n)');
  });

  it("asks only for referral redeemers' events: each role's clause is restricted by a subquery on the referral event", () => {
    // Act
    const query = personEventsQuery(1_000, WINDOW);

    // Assess
    const subquery = /person_id IN \(SELECT person_id FROM events WHERE event = \{referral_event\}/g;
    expect(query.match(subquery)).toHaveLength(2);
    expect(query).toContain('{qualify_referrals_since}');
    expect(query).toContain('{revoke_referrals_since}');
  });

  it('leaves out the clause of a role that is off', () => {
    // Act
    const query = personEventsQuery(1_000, { qualify: { event: 'x', referralsSince: '' } });

    // Assess
    expect(query).toContain('{qualify_event}');
    expect(query).not.toContain('{revoke_event}');
  });

  it('asks nothing when neither QUALIFY_EVENT nor REVOKE_EVENT is set', async () => {
    // Prepare
    const fetch = fakeFetch([]);

    // Act
    const rows = await all(client(fetch.impl).personEventPages({ ...WINDOW, qualify: undefined, revoke: undefined }));

    // Assess
    expect(rows).toEqual([]);
    expect(fetch.requests).toHaveLength(0);
  });

  it('reads the person id of each row, the id the webhook sends as person.id', async () => {
    // Prepare
    const row = [
      '0190b6c2-6f1e-7c3a-9d7e-000000000001',
      'subscription paid',
      'd1',
      '{}',
      '2026-07-01T01:00:00.000Z',
      'a@example.com',
      'p-1',
    ];
    const fetch = fakeFetch([{ columns: COLUMNS, results: [row] }]);

    // Act
    const rows = await all(client(fetch.impl).personEventPages(WINDOW));

    // Assess
    expect(rows).toEqual([expect.objectContaining({ uuid: row[0], personId: 'p-1', personEmail: 'a@example.com' })]);
  });
});

describe('qualifyWhereProblem', () => {
  it.each([
    ['toFloat(properties.amount) >= 20'],
    ["properties.plan = 'pro' AND toFloat(properties.amount) >= 20"],
    ["properties.note = 'a -- (c' "],
    ["properties.name = 'it''s'"],
    ['has(properties.tags, [1, 2])'],
  ])('accepts %p', (where) => {
    expect(qualifyWhereProblem(where)).toBeUndefined();
  });

  it.each([
    ['1 = 1; DROP TABLE events', ';'],
    ['1 = 1) OR (1 = 1', 'unbalanced ")"'],
    ['(1 = 1', 'unclosed bracket'],
    ["properties.plan = 'pro", "unclosed '"],
    ['1 = 1 -- comment', 'comment'],
    ['1 = 1 /* x', 'comment'],
    ['event = {qualify_event}', 'placeholders'],
    ['(1 = 1]', 'unbalanced "]"'],
  ])('refuses %p', (where, problem) => {
    expect(qualifyWhereProblem(where)).toContain(problem);
  });
});

describe('personEventsInLedger', () => {
  const ddbMock = mockClient(DynamoDBDocumentClient);
  beforeEach(() => ddbMock.reset());

  it('reads only the key of person-event#<uuid>, the one attribute the reconciler may read', async () => {
    // Prepare
    ddbMock.on(BatchGetCommand).resolves({ Responses: { ledger: [{ pk: 'person-event#e1' }] } });
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));

    // Act
    const found = await personEventsInLedger(client, 'ledger', ['e1', 'e2']);

    // Assess
    expect([...found]).toEqual(['e1']);
    const request = ddbMock.commandCalls(BatchGetCommand)[0]!.args[0].input.RequestItems!.ledger!;
    expect(request.Keys).toEqual([{ pk: 'person-event#e1' }, { pk: 'person-event#e2' }]);
    expect(request.ProjectionExpression).toBe('pk');
  });
});
