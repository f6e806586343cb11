import { PermanentError, RetryableError } from '../../lib/domain/errors';
import {
  issueReferralCode,
  resolveReferralCode,
  resolveReferrer,
  type CodeOwner,
  type ReferralCodeStore,
} from '../../lib/domain/referral-codes';
import { PostHogSharedSignals } from '../../lib/adapters/posthog-query';
import { reviewReasons, type GuardDeps } from '../../lib/domain/lifecycle/guards';
import { loadLifecycleConfig, loadWorkerConfig, type LifecycleConfig } from '../../lib/infra/config';
import { loadReferralCodesConfig, referralLink } from '../../lib/infra/config-referral-codes';
import { parseWebhook } from '../../lib/inbound/posthog-webhook';
import { parseReferral } from '../../lib/domain/referral';
import { SAMPLE_REFERRAL } from '../support/fixtures';

/** The two kinds of code item in memory, written once each as the DynamoDB issuer writes them. */
class MemoryCodeStore implements ReferralCodeStore {
  public readonly codes = new Map<string, CodeOwner & { canonical: string }>();
  public readonly owners = new Map<string, string>();
  /** Throw after the code item is written, once: a crash between the two writes. */
  public crashAfterCodeItem = false;

  public async codeItem(code: string) {
    return this.codes.get(code);
  }
  public async codeOf(canonical: string) {
    return this.owners.get(canonical);
  }
  public async putCodeItem(code: string, owner: CodeOwner & { canonical: string }) {
    if (this.codes.has(code)) return false;
    this.codes.set(code, owner);
    if (this.crashAfterCodeItem) {
      this.crashAfterCodeItem = false;
      throw new RetryableError('crashed between the two writes');
    }
    return true;
  }
  public async putOwnerItem(canonical: string, code: string) {
    if (this.owners.has(canonical)) return false;
    this.owners.set(canonical, code);
    return true;
  }
}

describe('referral codes (domain)', () => {
  it('never hands out, nor resolves, a code whose owner item a crash left unwritten', async () => {
    // Prepare
    const store = new MemoryCodeStore();
    store.crashAfterCodeItem = true;
    await expect(issueReferralCode({ email: 'ada@example.com' }, store)).rejects.toThrow(RetryableError);
    const [orphan] = [...store.codes.keys()];

    // Act
    const code = await issueReferralCode({ email: 'ada@example.com' }, store);

    // Assess
    expect(code).not.toBe(orphan);
    expect(await resolveReferralCode(orphan!, store)).toBeUndefined();
    expect(await resolveReferralCode(code, store)).toEqual({ email: 'ada@example.com' });
  });

  it("answers the winner's code to a request that lost the race for the owner item", async () => {
    // Prepare: another request wrote this person's owner item between our read and our write
    const store = new MemoryCodeStore();
    const codeOf = store.codeOf.bind(store);
    let reads = 0;
    store.codeOf = async (canonical) => (reads++ === 0 ? undefined : codeOf(canonical));
    store.owners.set('ada@example.com', 'WINNER2345');
    store.codes.set('WINNER2345', { email: 'ada@example.com', canonical: 'ada@example.com' });

    // Act
    const code = await issueReferralCode({ email: 'ada@example.com' }, store);

    // Assess
    expect(code).toBe('WINNER2345');
  });

  it('draws again when a random code already exists', async () => {
    // Prepare: the first draw is all 'A's, which someone already has
    const store = new MemoryCodeStore();
    store.codes.set('AAAAAAAAAA', { email: 'other@example.com', canonical: 'other@example.com' });
    let draws = 0;
    const random = (size: number) => new Uint8Array(size).fill(draws++ === 0 ? 0 : 1);

    // Act
    const code = await issueReferralCode({ email: 'ada@example.com' }, store, random);

    // Assess
    expect(code).toBe('BBBBBBBBBB');
  });

  it('resolves a code whatever its case and surrounding spaces', async () => {
    // Prepare
    const store = new MemoryCodeStore();
    const code = await issueReferralCode({ email: 'ada@example.com', distinctId: 'ada-1' }, store);

    // Act
    const owner = await resolveReferralCode(`  ${code.toLowerCase()} `, store);

    // Assess
    expect(owner).toEqual({ email: 'ada@example.com', distinctId: 'ada-1' });
  });

  it('refuses a referral without a code when codes are required', async () => {
    // Prepare
    const { referralCode: _none, ...withoutCode } = { ...SAMPLE_REFERRAL, referralCode: undefined };

    // Act
    const required = await resolveReferrer(withoutCode, { store: new MemoryCodeStore(), required: true });

    // Assess
    expect(required.refusal).toBe('referral_code_required');
  });

  it('fails permanently, paying no one, on a referral naming a code when no code store is wired', async () => {
    // Prepare: a code-only referral (no referrer email) and one whose event also typed an email
    const codeOnly = { ...SAMPLE_REFERRAL, referrerEmail: '', referralCode: 'abcdefgh23' };
    const withEmail = { ...SAMPLE_REFERRAL, referralCode: 'abcdefgh23' };

    // Act
    const outcomes = await Promise.allSettled([resolveReferrer(codeOnly, undefined), resolveReferrer(withEmail, undefined)]);

    // Assess: parked (DLQ, redriven once wired), never resolved to a referrer to pay
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason;
      expect(reason).toBeInstanceOf(PermanentError);
      expect(String(reason.message)).toContain('no referral code store');
    }
  });
});

describe('referral codes at the webhook', () => {
  const OPTIONS = { referralEvent: 'referral redeemed', referrerEmailProperty: 'referrer_email', redeemerEmailProperty: 'redeemer_email' };
  const body = (properties: Record<string, unknown>) =>
    JSON.stringify({
      event: {
        uuid: SAMPLE_REFERRAL.eventId,
        event: 'referral redeemed',
        distinct_id: 'd',
        properties: { redeemer_email: 'grace@example.org', ...properties },
      },
    });

  it.each([
    ['no referrer email', { referral_code: ' K7QW2MXR9P ' }],
    ['a malformed referrer email beside it', { referral_code: 'K7QW2MXR9P', referrer_email: 'not an email' }],
  ])('queues a referral that names a code and %s, the referrer left to the worker', (_what, properties) => {
    // Act
    const parsed = parseWebhook(body(properties), OPTIONS);

    // Assess
    expect(parsed).toMatchObject({ kind: 'referral', referral: { referrerEmail: '', referralCode: 'k7qw2mxr9p' } });
    expect(parseReferral(JSON.stringify((parsed as { referral: unknown }).referral))).toMatchObject({
      referrerEmail: '',
      referralCode: 'k7qw2mxr9p',
    });
  });

  it('refuses a referral that names neither a code nor a referrer email', () => {
    // Act
    const parse = () => parseWebhook(body({}), OPTIONS);

    // Assess
    expect(parse).toThrow(expect.objectContaining({ statusCode: 422, code: 'missing_referrer_email' }));
  });

  it('does not read a queue message with an empty referrer and no code', () => {
    // Act
    const parsed = parseReferral(JSON.stringify({ ...SAMPLE_REFERRAL, referrerEmail: '' }));

    // Assess
    expect(parsed).toBeUndefined();
  });
});

describe('referral codes (settings)', () => {
  const valid = { APP_API_KEY: 'k'.repeat(32), REFERRAL_LINK: 'https://app.example.com/signup?ref={code}', TABLE_NAME: 'ledger' };

  it.each([
    ['a short APP_API_KEY', { APP_API_KEY: 'short' }, /APP_API_KEY is too short/],
    ["APP_API_KEY equal to the webhook's secret", { WEBHOOK_SECRET: 'k'.repeat(32) }, /APP_API_KEY must differ from WEBHOOK_SECRET/],
    ['a REFERRAL_LINK without {code}', { REFERRAL_LINK: 'https://app.example.com/signup' }, /REFERRAL_LINK must contain \{code\}/],
    ['a REFERRAL_LINK that is not https', { REFERRAL_LINK: 'http://app.example.com/?ref={code}' }, /REFERRAL_LINK must be a URL/],
  ])('refuses %s at start', (_what, change, problem) => {
    // Act
    const load = () => loadReferralCodesConfig({ ...valid, ...change });

    // Assess
    expect(load).toThrow(PermanentError);
    expect(load).toThrow(problem);
  });

  it('fills every {code} in the link, encoded', () => {
    // Act
    const link = referralLink('https://app.example.com/r/{code}?ref={code}', 'AB CD');

    // Assess
    expect(link).toBe('https://app.example.com/r/AB%20CD?ref=AB%20CD');
  });
});

describe('shared device / IP guard', () => {
  const config = (env: Record<string, string>): LifecycleConfig => loadLifecycleConfig(env);
  const ledger = {
    referrerVelocity: async () => 0,
    reserveBudget: async () => true,
    returnBudget: async () => undefined,
  } as unknown as GuardDeps['ledger'];

  it('asks PostHog once per pair, then answers from the cache', async () => {
    // Prepare
    const requests: unknown[] = [];
    const fetchImpl = (async (_url: string, init: RequestInit) => {
      requests.push(JSON.parse(String(init.body)));
      return new Response(JSON.stringify({ columns: ['shared_devices', 'shared_ips'], results: [[1, 0]] }), { status: 200 });
    }) as unknown as typeof fetch;
    const client = new PostHogSharedSignals({
      appHost: 'https://us.posthog.com',
      projectId: '1',
      personalApiKey: 'phx_x',
      fetch: fetchImpl,
    });
    const query = {
      referrer: { email: 'Ada@Example.com' },
      redeemer: { email: 'grace@example.org', distinctId: 'g-1' },
      since: '2026-11-01T00:00:00.000Z',
    };

    // Act
    const first = await client.shared(query);
    const second = await client.shared(query);

    // Assess
    expect([first, second]).toEqual([
      { devices: 1, ips: 0 },
      { devices: 1, ips: 0 },
    ]);
    expect(requests).toEqual([
      {
        query: expect.objectContaining({
          kind: 'HogQLQuery',
          values: {
            referrer_email: 'ada@example.com',
            referrer_distinct_id: '',
            redeemer_email: 'grace@example.org',
            redeemer_distinct_id: 'g-1',
            since: query.since,
          },
        }),
      },
    ]);
  });

  it('fails retryably, never as "no match", when PostHog throttles, and asks again next time', async () => {
    // Prepare
    const statuses = [429, 200];
    const fetchImpl = (async () => {
      const status = statuses.shift()!;
      return new Response(
        JSON.stringify(status === 200 ? { columns: ['shared_devices', 'shared_ips'], results: [[0, 0]] } : { detail: 'throttled' }),
        {
          status,
          headers: status === 429 ? { 'retry-after': '30' } : {},
        },
      );
    }) as unknown as typeof fetch;
    const client = new PostHogSharedSignals({
      appHost: 'https://us.posthog.com',
      projectId: '1',
      personalApiKey: 'phx_x',
      fetch: fetchImpl,
    });
    const query = { referrer: { email: 'a@example.com' }, redeemer: { email: 'b@example.com' }, since: '2026-11-01T00:00:00.000Z' };

    // Act
    const throttled = await client.shared(query).catch((error: unknown) => error);
    const later = await client.shared(query);

    // Assess
    expect(throttled).toBeInstanceOf(RetryableError);
    expect((throttled as RetryableError).retryAfterMs).toBe(30_000);
    expect(later).toEqual({ devices: 0, ips: 0 });
  });

  it('does not ask PostHog about a referral another guard already sends to review', async () => {
    // Prepare
    const shared = jest.fn(async () => ({ devices: 1, ips: 1 }));
    const deps: GuardDeps = {
      config: config({ REVIEW_SHARED_DEVICE: 'true', REVIEW_DISPOSABLE_EMAIL: 'true' }),
      ledger,
      cents: 5000,
      sharedSignals: { shared },
    };
    const disposable = { ...SAMPLE_REFERRAL, redeemerEmail: 'grace@mailinator.com' };

    // Act
    const reasons = await reviewReasons(disposable, '2026-11-25T10:00:00.000Z', deps);

    // Assess
    expect(reasons).toEqual(['disposable_email']);
    expect(shared).not.toHaveBeenCalled();
  });

  it('asks about the lookback before the referral began, with both people', async () => {
    // Prepare
    const shared = jest.fn(async () => ({ devices: 0, ips: 2 }));
    const deps: GuardDeps = {
      config: config({ REVIEW_SHARED_DEVICE: 'true', REVIEW_SHARED_IP: 'true', SHARED_SIGNAL_LOOKBACK: '7d' }),
      ledger,
      cents: 5000,
      sharedSignals: { shared },
    };

    // Act
    const reasons = await reviewReasons({ ...SAMPLE_REFERRAL, referrerDistinctId: 'ada-1' }, '2026-11-25T10:00:00.000Z', deps);

    // Assess
    expect(reasons).toEqual(['shared_ip']);
    expect(shared).toHaveBeenCalledWith({
      referrer: { email: SAMPLE_REFERRAL.referrerEmail, distinctId: 'ada-1' },
      redeemer: { email: SAMPLE_REFERRAL.redeemerEmail, distinctId: SAMPLE_REFERRAL.distinctId },
      since: '2026-11-18T10:00:00.000Z',
    });
  });

  it('refuses to start a worker whose shared-signal guard could not ask PostHog', () => {
    // Prepare
    const worker = {
      SHOPIFY_STORE_DOMAIN: 'shop.myshopify.com',
      SHOPIFY_ACCESS_TOKEN: 'shpat_x',
      CUSTOMERIO_SITE_ID: 'site',
      CUSTOMERIO_API_KEY: 'key',
      REFERRAL_SIGNATURES: 'off',
      REVIEW_SHARED_IP: 'true',
    };

    // Act
    const load = () => loadWorkerConfig(worker);
    const loaded = loadWorkerConfig({ ...worker, POSTHOG_PROJECT_ID: '7', POSTHOG_PERSONAL_API_KEY: 'phx_k' });

    // Assess
    expect(load).toThrow(/POSTHOG_PROJECT_ID must be the numeric project id.*POSTHOG_PERSONAL_API_KEY is not set/);
    expect(loaded.sharedSignalQuery).toEqual({ appHost: 'https://us.posthog.com', projectId: '7', personalApiKey: 'phx_k' });
  });
});
