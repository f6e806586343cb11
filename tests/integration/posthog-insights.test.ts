import { spawn } from 'node:child_process';
import { resolve as resolvePath } from 'node:path';
import {
  DEFAULT_DASHBOARD_NAME,
  InsightsUsageError,
  PostHogApiError,
  contains,
  ensureReferralInsights,
  runCli,
  type InsightsOptions,
} from '../../ops/posthog-insights';
import { startFakePostHogApi, type FakeInsight, type FakePostHogApi } from '../support/fake-posthog-api';

const REDEEMED = 'referral redeemed';
const FULFILLED = 'referral reward fulfilled';
const REJECTED = 'referral reward rejected';
const LIFECYCLE = ['referral reward held', 'referral reward released', 'referral reward revoked'];
const REPO = resolvePath(__dirname, '..', '..');

type Source = {
  kind: string;
  series: { kind: string; event: string }[];
  breakdownFilter?: Record<string, unknown>;
  funnelsFilter?: Record<string, unknown>;
};
const sourceOf = (insight: FakeInsight): Source => (insight.query as { source: Source }).source;
const eventsOf = (insight: FakeInsight): string[] => sourceOf(insight).series.map((s) => s.event);

describe('ops/posthog-insights against a fake PostHog API', () => {
  let fake: FakePostHogApi;

  beforeAll(async () => {
    fake = await startFakePostHogApi({ apiKey: 'phx_right_key', projectId: '4242' });
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
  });

  const options = (overrides: Partial<InsightsOptions> = {}): InsightsOptions => ({
    host: fake.url,
    projectId: fake.projectId,
    apiKey: fake.apiKey,
    fetch: globalThis.fetch,
    ...overrides,
  });

  const byName = (fragment: string): FakeInsight => {
    const found = fake.insights.filter((i) => i.name?.includes(fragment) && !i.deleted);
    expect(found).toHaveLength(1);
    return found[0];
  };

  it('creates the three insights with the program events', async () => {
    // Act
    const report = await ensureReferralInsights(options());

    // Assess
    expect(report.insights.map((i) => [i.key, i.action])).toEqual([
      ['outcomes', 'created'],
      ['rejections', 'created'],
      ['funnel', 'created'],
    ]);
    expect(fake.insights).toHaveLength(3);
    for (const insight of fake.insights) {
      expect(insight.saved).toBe(true);
      expect(insight.query).toMatchObject({ kind: 'InsightVizNode' });
    }

    const outcomes = byName('redeemed vs fulfilled vs rejected');
    expect(sourceOf(outcomes).kind).toBe('TrendsQuery');
    expect(eventsOf(outcomes)).toEqual([REDEEMED, FULFILLED, REJECTED, ...LIFECYCLE]);
    expect(sourceOf(outcomes).breakdownFilter).toBeUndefined();

    const rejections = byName('rejected by reason');
    expect(sourceOf(rejections).kind).toBe('TrendsQuery');
    expect(eventsOf(rejections)).toEqual([REJECTED]);
    expect(sourceOf(rejections).breakdownFilter).toEqual({ breakdown: 'reason', breakdown_type: 'event' });

    const funnel = byName('funnel');
    expect(sourceOf(funnel).kind).toBe('FunnelsQuery');
    expect(eventsOf(funnel)).toEqual([REDEEMED, FULFILLED]);
    expect(sourceOf(funnel).funnelsFilter).toMatchObject({ funnelVizType: 'steps', funnelOrderType: 'ordered' });

    // Every request carried the key as a bearer token.
    expect(fake.requests.every((r) => r.authorization === 'Bearer phx_right_key')).toBe(true);
  });

  it('creates nothing new on a second run', async () => {
    // Prepare
    await ensureReferralInsights(options());
    const before = JSON.stringify(fake.insights);
    fake.requests.length = 0;

    // Act
    const report = await ensureReferralInsights(options());

    // Assess
    expect(report.insights.map((i) => i.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(fake.writes()).toEqual([]);
    expect(JSON.stringify(fake.insights)).toBe(before);
  });

  it('puts the insights on one dashboard, once', async () => {
    // Act
    const first = await ensureReferralInsights(options({ dashboard: DEFAULT_DASHBOARD_NAME }));
    fake.requests.length = 0;
    const second = await ensureReferralInsights(options({ dashboard: DEFAULT_DASHBOARD_NAME }));

    // Assess
    expect(first.dashboard).toMatchObject({ name: DEFAULT_DASHBOARD_NAME, action: 'created' });
    expect(second.dashboard).toMatchObject({ name: DEFAULT_DASHBOARD_NAME, action: 'unchanged', id: first.dashboard?.id });
    expect(fake.dashboards).toHaveLength(1);
    expect(fake.insights).toHaveLength(3);
    for (const insight of fake.insights) expect(insight.dashboards).toEqual([fake.dashboards[0].id]);
    expect(fake.writes()).toEqual([]);
  });

  it('adds existing insights to a dashboard without dropping the ones they are on', async () => {
    // Prepare
    await ensureReferralInsights(options());
    const other = fake.seedDashboard({ name: 'Growth' });
    const funnel = byName('funnel');
    funnel.dashboards = [other.id];

    // Act
    const report = await ensureReferralInsights(options({ dashboard: 'Referrals' }));

    // Assess
    const referrals = fake.dashboards.find((d) => d.name === 'Referrals');
    expect(referrals).toBeDefined();
    expect(report.insights.map((i) => i.action)).toEqual(['updated', 'updated', 'updated']);
    expect(byName('funnel').dashboards).toEqual([other.id, referrals!.id]);
    expect(fake.insights).toHaveLength(3);
  });

  it('restores an insight someone changed, unless told to skip existing ones', async () => {
    // Prepare
    await ensureReferralInsights(options());
    const rejections = byName('rejected by reason');
    sourceOf(rejections).breakdownFilter = { breakdown: '$browser', breakdown_type: 'event' };

    // Act
    const skipped = await ensureReferralInsights(options({ skipExisting: true }));
    const skippedBreakdown = { ...sourceOf(byName('rejected by reason')).breakdownFilter };
    const restored = await ensureReferralInsights(options());

    // Assess
    expect(skipped.insights.find((i) => i.key === 'rejections')?.action).toBe('skipped');
    expect(skippedBreakdown).toEqual({ breakdown: '$browser', breakdown_type: 'event' });
    expect(restored.insights.map((i) => i.action)).toEqual(['unchanged', 'updated', 'unchanged']);
    expect(sourceOf(byName('rejected by reason')).breakdownFilter).toEqual({ breakdown: 'reason', breakdown_type: 'event' });
    expect(fake.insights).toHaveLength(3);
    expect(fake.writes().filter((r) => r.method === 'POST')).toHaveLength(3);
  });

  it('matches exact names only, ignores deleted insights, and follows pagination', async () => {
    // Prepare: a small page size, look-alikes that `search` also returns, and a deleted original.
    const paged = await startFakePostHogApi({ apiKey: 'phx_right_key', projectId: '7', maxPageSize: 1 });
    try {
      paged.seedInsight({ name: 'Referral rewards: redeemed vs fulfilled vs rejected (copy)' });
      paged.seedInsight({ name: 'Old notes', description: 'see Referral rewards: rejected by reason' });
      paged.seedInsight({ name: 'Referral rewards: rejected by reason', deleted: true });

      // Act
      const report = await ensureReferralInsights(options({ host: paged.url, projectId: '7' }));
      const again = await ensureReferralInsights(options({ host: paged.url, projectId: '7' }));

      // Assess
      expect(report.insights.map((i) => i.action)).toEqual(['created', 'created', 'created']);
      expect(again.insights.map((i) => i.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
      expect(paged.insights).toHaveLength(6);
      // The second run saw the look-alike and the real one on two pages.
      expect(paged.requests.some((r) => r.method === 'GET' && /[?&]offset=1(&|$)/.test(r.query))).toBe(true);
    } finally {
      await paged.close();
    }
  });

  it('uses the configured redeemed event name', async () => {
    // Act
    await ensureReferralInsights(options({ events: { redeemed: 'invite accepted' } }));

    // Assess
    expect(eventsOf(byName('redeemed vs fulfilled vs rejected'))).toEqual(['invite accepted', FULFILLED, REJECTED, ...LIFECYCLE]);
    expect(eventsOf(byName('funnel'))).toEqual(['invite accepted', FULFILLED]);
  });

  it('changes nothing in a dry run', async () => {
    // Act
    const report = await ensureReferralInsights(options({ dryRun: true, dashboard: 'Referrals' }));

    // Assess
    expect(report.dashboard?.action).toBe('would-create');
    expect(report.insights.map((i) => i.action)).toEqual(['would-create', 'would-create', 'would-create']);
    expect(fake.writes()).toEqual([]);
    expect(fake.insights).toHaveLength(0);
  });

  it('fails clearly on a wrong key, creates nothing, and never shows the key', async () => {
    // Act
    const failure = ensureReferralInsights(options({ apiKey: 'phx_wrong_key' }));

    // Assess
    await expect(failure).rejects.toBeInstanceOf(PostHogApiError);
    await expect(failure).rejects.toMatchObject({ status: 401 });
    await expect(failure).rejects.toThrow(/rejected the personal API key \(401/);
    await expect(failure).rejects.not.toThrow(/phx_wrong_key/);
    expect(fake.insights).toHaveLength(0);
    expect(fake.writes()).toEqual([]);
  });

  it('names the project and host on an unknown project', async () => {
    await expect(ensureReferralInsights(options({ projectId: '999' }))).rejects.toThrow(/404.*--project 999/);
  });

  it('refuses the ingestion host and plain http to a remote host before sending anything', async () => {
    // Act + Assess
    await expect(ensureReferralInsights(options({ host: 'https://us.i.posthog.com' }))).rejects.toThrow(
      /ingestion host.*https:\/\/us\.posthog\.com/,
    );
    await expect(ensureReferralInsights(options({ host: 'http://posthog.example.com' }))).rejects.toBeInstanceOf(InsightsUsageError);
    expect(fake.requests).toEqual([]);
  });

  it('contains() treats server-added defaults as the same definition', () => {
    expect(contains({ a: 1, b: [{ c: 2, d: 3 }], extra: true }, { a: 1, b: [{ c: 2 }] })).toBe(true);
    expect(contains({ a: 1, b: [{ c: 2 }, { c: 3 }] }, { a: 1, b: [{ c: 2 }] })).toBe(false);
    expect(contains({ a: 2 }, { a: 1 })).toBe(false);
    expect(contains(null, { a: 1 })).toBe(false);
  });

  describe('pay on value: the qualification insights', () => {
    const QUALIFIED = 'referral reward qualified';
    const DAY_MS = 86_400_000;

    it('adds the redeemed → qualified → rewarded funnel and the time to qualify, QUALIFY_WITHIN as their window', async () => {
      // Act
      const report = await ensureReferralInsights(options({ qualification: { withinMs: 30 * DAY_MS } }));

      // Assess
      expect(report.insights.map((i) => [i.key, i.action])).toEqual([
        ['outcomes', 'created'],
        ['rejections', 'created'],
        ['funnel', 'created'],
        ['qualification', 'created'],
        ['time_to_qualify', 'created'],
      ]);
      const qualification = byName('redeemed → qualified → rewarded');
      expect(sourceOf(qualification).kind).toBe('FunnelsQuery');
      expect(eventsOf(qualification)).toEqual([REDEEMED, QUALIFIED, FULFILLED]);
      expect(sourceOf(qualification).funnelsFilter).toMatchObject({
        funnelVizType: 'steps',
        funnelOrderType: 'ordered',
        funnelWindowInterval: 30,
        funnelWindowIntervalUnit: 'day',
      });
      const timeToQualify = byName('time to qualify');
      expect(eventsOf(timeToQualify)).toEqual([REDEEMED, QUALIFIED]);
      expect(sourceOf(timeToQualify).funnelsFilter).toMatchObject({
        funnelVizType: 'time_to_convert',
        funnelWindowInterval: 30,
        funnelWindowIntervalUnit: 'day',
      });
    });

    it('creates them once, and brings their window up to date when QUALIFY_WITHIN changes', async () => {
      // Prepare
      await ensureReferralInsights(options({ qualification: { withinMs: 30 * DAY_MS } }));

      // Act
      const again = await ensureReferralInsights(options({ qualification: { withinMs: 30 * DAY_MS } }));
      const changed = await ensureReferralInsights(options({ qualification: { withinMs: 36 * 3_600_000 } }));

      // Assess
      expect(again.insights.map((i) => i.action)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged', 'unchanged']);
      expect(changed.insights.map((i) => i.action)).toEqual(['unchanged', 'unchanged', 'unchanged', 'updated', 'updated']);
      expect(fake.insights).toHaveLength(5);
      for (const name of ['redeemed → qualified → rewarded', 'time to qualify']) {
        expect(sourceOf(byName(name)).funnelsFilter).toMatchObject({ funnelWindowInterval: 36, funnelWindowIntervalUnit: 'hour' });
      }
    });

    it('reads QUALIFY_EVENT and QUALIFY_WITHIN from the environment, and --qualify-within over them', async () => {
      // Prepare
      const run = (argv: string[], env: Record<string, string>) =>
        runCli(
          ['--host', fake.url, '--project', fake.projectId, ...argv],
          { POSTHOG_PERSONAL_API_KEY: 'phx_right_key', ...env },
          {
            fetch: globalThis.fetch,
            stdout: () => undefined,
            stderr: () => undefined,
          },
        );

      // Act
      const offCode = await run([], { QUALIFY_WITHIN: '14d' });
      const offCount = fake.insights.length;
      const fromEnvCode = await run([], { QUALIFY_EVENT: 'subscription paid', QUALIFY_WITHIN: '14d' });
      const fromEnv = sourceOf(byName('time to qualify')).funnelsFilter;
      const flagCode = await run(['--qualify-within', '7d'], { QUALIFY_EVENT: 'subscription paid', QUALIFY_WITHIN: '14d' });

      // Assess
      expect([offCode, fromEnvCode, flagCode]).toEqual([0, 0, 0]);
      expect(offCount).toBe(3);
      expect(fromEnv).toMatchObject({ funnelWindowInterval: 14, funnelWindowIntervalUnit: 'day' });
      expect(sourceOf(byName('time to qualify')).funnelsFilter).toMatchObject({ funnelWindowInterval: 7 });
    });

    it('refuses a window that is not a duration before sending anything', async () => {
      // Prepare
      const err: string[] = [];

      // Act
      const code = await runCli(
        ['--host', fake.url, '--project', fake.projectId, '--qualify-within', '30'],
        { POSTHOG_PERSONAL_API_KEY: 'phx_right_key' },
        { fetch: globalThis.fetch, stdout: () => undefined, stderr: (line) => err.push(line) },
      );

      // Assess
      expect(code).toBe(2);
      expect(err.join('\n')).toMatch(/--qualify-within must be a duration like 30d/);
      expect(fake.requests).toEqual([]);
    });

    it('is refused by PostHog, as its schema would, when the window unit is not one of its units', async () => {
      // Prepare
      const query = {
        kind: 'InsightVizNode',
        source: {
          kind: 'FunnelsQuery',
          series: [
            { kind: 'EventsNode', event: REDEEMED },
            { kind: 'EventsNode', event: QUALIFIED },
          ],
          funnelsFilter: { funnelWindowInterval: 30, funnelWindowIntervalUnit: 'days' },
        },
      };

      // Act
      const response = await fetch(`${fake.url}/api/projects/${fake.projectId}/insights/`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${fake.apiKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'x', query }),
      });

      // Assess
      expect(response.status).toBe(400);
      expect(fake.insights).toHaveLength(0);
    });
  });

  describe('runCli', () => {
    const run = async (argv: string[], env: Record<string, string | undefined>) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(argv, env, { fetch: globalThis.fetch, stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };

    it('exits 0 and reports what it did', async () => {
      // Act
      const first = await run(['--host', fake.url, '--project', fake.projectId, '--dashboard'], {
        POSTHOG_PERSONAL_API_KEY: 'phx_right_key',
      });
      const second = await run(['--host', fake.url, '--project', fake.projectId, '--dashboard'], {
        POSTHOG_PERSONAL_API_KEY: 'phx_right_key',
      });

      // Assess
      expect(first.code).toBe(0);
      expect(first.out).toMatch(/done: 3 created, 0 updated/);
      expect(second.code).toBe(0);
      expect(second.out).toMatch(/done: 0 created, 0 updated, 3 left as they were/);
      expect(fake.insights).toHaveLength(3);
      expect(`${first.out}${first.err}${second.out}${second.err}`).not.toContain('phx_right_key');
    });

    it('exits 1 with a clear message on a wrong key', async () => {
      // Act
      const result = await run(['--host', fake.url, '--project', fake.projectId], { POSTHOG_PERSONAL_API_KEY: 'phx_wrong_key' });

      // Assess
      expect(result.code).toBe(1);
      expect(result.err).toMatch(/401/);
      expect(result.err).toMatch(/POSTHOG_PERSONAL_API_KEY/);
      expect(`${result.out}${result.err}`).not.toContain('phx_wrong_key');
      expect(fake.insights).toHaveLength(0);
    });

    it('exits 2 on usage errors: no project, no key', async () => {
      expect((await run(['--host', fake.url], { POSTHOG_PERSONAL_API_KEY: 'phx_right_key' })).code).toBe(2);
      const noKey = await run(['--host', fake.url, '--project', fake.projectId], {});
      expect(noKey.code).toBe(2);
      expect(noKey.err).toMatch(/POSTHOG_PERSONAL_API_KEY is not set/);
      expect(fake.requests).toEqual([]);
    });
  });

  it('the real command (tsx) exits non-zero on a wrong key and zero on the right one', async () => {
    const exec = (key: string) =>
      new Promise<{ code: number | null; output: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [resolvePath(REPO, 'node_modules/tsx/dist/cli.mjs'), 'ops/posthog-insights.ts', '--host', fake.url, '--project', fake.projectId],
          { cwd: REPO, env: { ...process.env, POSTHOG_PERSONAL_API_KEY: key }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, output }));
      });

    // Act
    const wrong = await exec('phx_wrong_key');
    const right = await exec('phx_right_key');

    // Assess
    expect(wrong.code).toBe(1);
    expect(wrong.output).toMatch(/rejected the personal API key/);
    expect(wrong.output).not.toContain('phx_wrong_key');
    expect(right.code).toBe(0);
    expect(right.output).not.toContain('phx_right_key');
    expect(fake.insights).toHaveLength(3);
  });
});
