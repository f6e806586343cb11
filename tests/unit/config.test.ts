import { loadIngestConfig, loadWorkerConfig, type Env } from '../../lib/infra/config';
import { PermanentError } from '../../lib/domain/errors';
import { thrown } from '../support/failure';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';

/** The least a worker's fulfilment needs: everything else has a default (its table and DLQ: tests/unit/function-config.test.ts). */
const WORKER_ENV: Env = {
  SHOPIFY_STORE_DOMAIN: 'example-shop.myshopify.com',
  SHOPIFY_ACCESS_TOKEN: 'shpat_test_token',
  CUSTOMERIO_SITE_ID: 'site-id',
  CUSTOMERIO_API_KEY: 'api-key',
  REFERRAL_SIGNING_KEY: TEST_REFERRAL_SIGNING_KEY,
};

const INGEST_ENV: Env = {
  WEBHOOK_SECRET: 'webhook-secret-0123456789abcdefghij',
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
};

const permanentError = (fn: () => unknown): PermanentError => thrown(fn, PermanentError);

describe('loadWorkerConfig: defaults', () => {
  it('rewards 25.00 with 8-character codes by default', () => {
    // Act
    const config = loadWorkerConfig(WORKER_ENV);

    // Assess
    expect(config.rewardAmount).toBe('25.00');
    expect(config.rewardCodeLength).toBe(8);
  });

  it("sends to Customer.io's US Track API with the seed's event name by default", () => {
    // Act
    const config = loadWorkerConfig(WORKER_ENV);

    // Assess
    expect(config.customerio).toEqual({
      trackUrl: 'https://track.customer.io',
      siteId: 'site-id',
      apiKey: 'api-key',
      eventName: 'pyramid_scheme_fulfillment',
    });
  });

  it('uses the EU Track API when CUSTOMERIO_REGION is eu', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, CUSTOMERIO_REGION: 'eu' });

    // Assess
    expect(config.customerio.trackUrl).toBe('https://track-eu.customer.io');
  });

  it('turns SHOPIFY_STORE_DOMAIN into an https base URL', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_STORE_DOMAIN: ' example-shop.myshopify.com ' });

    // Assess
    expect(config.shopify).toEqual({
      baseUrl: 'https://example-shop.myshopify.com',
      apiVersion: '2026-10',
      auth: { mode: 'static', accessToken: 'shpat_test_token' },
    });
  });

  it('treats blank optional variables as unset', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REWARD_AMOUNT: '  ', CUSTOMERIO_EVENT: '' });

    // Assess
    expect(config.rewardAmount).toBe('25.00');
    expect(config.customerio.eventName).toBe('pyramid_scheme_fulfillment');
  });
});

describe('loadWorkerConfig: overrides', () => {
  it('uses the reward amount, code length and event name it is given', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REWARD_AMOUNT: '10.50', REWARD_CODE_LENGTH: '12', CUSTOMERIO_EVENT: 'referral_paid' });

    // Assess
    expect(config.rewardAmount).toBe('10.50');
    expect(config.rewardCodeLength).toBe(12);
    expect(config.customerio.eventName).toBe('referral_paid');
  });

  it('prefers SHOPIFY_BASE_URL to SHOPIFY_STORE_DOMAIN, without a trailing slash', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_BASE_URL: 'http://127.0.0.1:8788/' });

    // Assess
    expect(config.shopify.baseUrl).toBe('http://127.0.0.1:8788');
  });

  it('prefers CUSTOMERIO_TRACK_URL to the region, without a trailing slash', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, CUSTOMERIO_REGION: 'eu', CUSTOMERIO_TRACK_URL: 'http://127.0.0.1:8789/' });

    // Assess
    expect(config.customerio.trackUrl).toBe('http://127.0.0.1:8789');
  });

  it('reads the Customer.io region whatever its case', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, CUSTOMERIO_REGION: 'EU' });

    // Assess
    expect(config.customerio.trackUrl).toBe('https://track-eu.customer.io');
  });

  it('keeps only the host of a store domain pasted as an admin URL', () => {
    // Act
    const config = loadWorkerConfig({
      ...WORKER_ENV,
      SHOPIFY_BASE_URL: undefined,
      SHOPIFY_STORE_DOMAIN: 'https://my-shop.myshopify.com/admin',
    });

    // Assess
    expect(config.shopify.baseUrl).toBe('https://my-shop.myshopify.com');
  });

  it('uses the Shopify API version it is given', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_API_VERSION: '2026-04' });

    // Assess
    expect(config.shopify.apiVersion).toBe('2026-04');
  });

  it('reads a Dev Dashboard app from SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET', () => {
    // Act
    const config = loadWorkerConfig({
      ...WORKER_ENV,
      SHOPIFY_ACCESS_TOKEN: undefined,
      SHOPIFY_CLIENT_ID: ' cid ',
      SHOPIFY_CLIENT_SECRET: 'shpss_x',
    });

    // Assess
    expect(config.shopify.auth).toEqual({ mode: 'client_credentials', clientId: 'cid', clientSecret: 'shpss_x' });
  });
});

describe('loadWorkerConfig: Shopify credentials', () => {
  it.each([
    ['SHOPIFY_CLIENT_SECRET', { SHOPIFY_ACCESS_TOKEN: undefined, SHOPIFY_CLIENT_ID: 'cid' }],
    ['SHOPIFY_CLIENT_ID', { SHOPIFY_ACCESS_TOKEN: undefined, SHOPIFY_CLIENT_SECRET: 'shpss_x' }],
  ])('refuses half a client credentials pair, naming the missing %s', (missing, env) => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, ...env }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain(`${missing} is not set`);
  });

  it('refuses a static token and a client credentials pair at once', () => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_CLIENT_ID: 'cid', SHOPIFY_CLIENT_SECRET: 'shpss_x' }));

    // Assess
    expect(error.message).toContain('not both');
  });
});

describe('loadWorkerConfig: program settings', () => {
  it('reads REWARD_TYPE whatever its case', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REWARD_TYPE: ' Discount_Code ' });

    // Assess
    expect(config.rewardType).toBe('discount_code');
  });

  it('caps 10 rewards per referrer by default, and 0 lifts the cap', () => {
    // Act
    const byDefault = loadWorkerConfig(WORKER_ENV);
    const uncapped = loadWorkerConfig({ ...WORKER_ENV, MAX_REWARDS_PER_REFERRER: '0' });

    // Assess
    expect(byDefault.rules.maxRewardsPerReferrer).toBe(10);
    expect(uncapped.rules.maxRewardsPerReferrer).toBe(0);
  });

  it('reads REWARD_EXPIRES_DAYS as a number of days, and no expiry when unset', () => {
    // Act
    const expiring = loadWorkerConfig({ ...WORKER_ENV, REWARD_EXPIRES_DAYS: ' 30 ' });
    const forever = loadWorkerConfig({ ...WORKER_ENV, REWARD_EXPIRES_DAYS: ' ' });

    // Assess
    expect(expiring.rewardExpiresDays).toBe(30);
    expect(forever.rewardExpiresDays).toBeUndefined();
  });

  it('captures to PostHog only with POSTHOG_API_KEY, at the US host by default', () => {
    // Act
    const off = loadWorkerConfig(WORKER_ENV);
    const on = loadWorkerConfig({ ...WORKER_ENV, POSTHOG_API_KEY: ' phc_key ' });
    const eu = loadWorkerConfig({ ...WORKER_ENV, POSTHOG_API_KEY: 'phc_key', POSTHOG_HOST: 'https://eu.i.posthog.com/' });

    // Assess
    expect(off.posthog).toBeUndefined();
    expect(on.posthog).toEqual({ host: 'https://us.i.posthog.com', apiKey: 'phc_key' });
    expect(eu.posthog?.host).toBe('https://eu.i.posthog.com');
  });
});

describe('loadWorkerConfig: invalid settings', () => {
  it.each(['0', '0.00', '2500', '2000.01', 'abc', '25,00', '-5'])(
    'refuses REWARD_AMOUNT=%s with config_invalid naming the variable',
    (amount) => {
      // Act
      const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, REWARD_AMOUNT: amount }));

      // Assess
      expect(error.reason).toBe('config_invalid');
      expect(error.message).toContain('REWARD_AMOUNT');
    },
  );

  it('accepts the largest amount Shopify allows, 2000', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REWARD_AMOUNT: '2000' });

    // Assess
    expect(config.rewardAmount).toBe('2000');
  });

  it.each(['7', '21'])('refuses REWARD_CODE_LENGTH=%s with config_invalid naming the variable', (length) => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, REWARD_CODE_LENGTH: length }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain('REWARD_CODE_LENGTH');
  });

  it.each(['8', '20'])('accepts REWARD_CODE_LENGTH=%s', (length) => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REWARD_CODE_LENGTH: length });

    // Assess
    expect(config.rewardCodeLength).toBe(Number(length));
  });

  it.each([
    ['SHOPIFY_ACCESS_TOKEN', undefined],
    ['SHOPIFY_ACCESS_TOKEN', '   '],
    ['CUSTOMERIO_SITE_ID', undefined],
    ['CUSTOMERIO_API_KEY', undefined],
  ])('refuses a missing %s (%p) with config_invalid naming it', (name, value) => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, [name]: value }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain(`${name} is not set`);
  });

  it('refuses a config with neither SHOPIFY_STORE_DOMAIN nor SHOPIFY_BASE_URL', () => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_STORE_DOMAIN: undefined }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain('SHOPIFY_STORE_DOMAIN');
  });

  it('refuses a malformed SHOPIFY_API_VERSION', () => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_API_VERSION: 'latest' }));

    // Assess
    expect(error.message).toContain('SHOPIFY_API_VERSION');
  });

  it.each([
    ['REWARD_TYPE', 'voucher'],
    ['REWARD_CODE_LENGTH', '8.5'],
    ['REWARD_CODE_LENGTH', '12abc'],
    ['MAX_REWARDS_PER_REFERRER', '-1'],
    ['MAX_REWARDS_PER_REFERRER', 'ten'],
    ['MAX_REWARDS_PER_REFERRER', '2.5'],
    // The referrer's item lists the referrals holding its slots: bounded so it fits an item.
    ['MAX_REWARDS_PER_REFERRER', '1001'],
    ['REWARD_EXPIRES_DAYS', '0'],
    ['REWARD_EXPIRES_DAYS', '3651'],
    ['REWARD_EXPIRES_DAYS', '7.5'],
    ['SHOPIFY_BASE_URL', 'example-shop'],
    ['CUSTOMERIO_TRACK_URL', 'track.customer.io'],
    ['CUSTOMERIO_TRACK_URL', 'ftp://track.customer.io'],
  ])('refuses %s=%p with config_invalid naming it', (name, value) => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, [name]: value }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain(name);
  });

  it('refuses a POSTHOG_HOST that is not a URL when PostHog capture is on', () => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, POSTHOG_API_KEY: 'phc_key', POSTHOG_HOST: 'us.posthog' }));

    // Assess
    expect(error.message).toContain('POSTHOG_HOST');
  });

  it('names every problem at once', () => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, SHOPIFY_ACCESS_TOKEN: undefined, REWARD_AMOUNT: 'abc' }));

    // Assess
    expect(error.message).toContain('SHOPIFY_ACCESS_TOKEN');
    expect(error.message).toContain('REWARD_AMOUNT');
  });
});

describe('loadWorkerConfig: referral signatures', () => {
  it('requires signatures by default, with the key from REFERRAL_SIGNING_KEY (trimmed)', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNING_KEY: ` ${TEST_REFERRAL_SIGNING_KEY}\n` });

    // Assess
    expect(config.rules.referralSignatures).toEqual({ mode: 'required', key: TEST_REFERRAL_SIGNING_KEY });
  });

  it.each([undefined, '', '   '])('refuses REFERRAL_SIGNING_KEY=%p under required signatures with config_invalid naming it', (key) => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNING_KEY: key }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain('REFERRAL_SIGNING_KEY is not set');
  });

  it('refuses a key shorter than 32 bytes, without echoing it', () => {
    // Prepare
    const short = 'k'.repeat(31);

    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNATURES: 'required', REFERRAL_SIGNING_KEY: short }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain('REFERRAL_SIGNING_KEY must be at least 32 bytes');
    expect(error.message).not.toContain(short);
  });

  it('accepts a key of exactly 32 bytes', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNING_KEY: 'k'.repeat(32) });

    // Assess
    expect(config.rules.referralSignatures.mode).toBe('required');
  });

  it('carries REFERRAL_SIGNING_KEY_PREVIOUS (trimmed) beside the key, for a rotation', () => {
    // Prepare
    const previous = 'p'.repeat(32);

    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNING_KEY_PREVIOUS: ` ${previous}\n` });

    // Assess
    expect(config.rules.referralSignatures).toEqual({ mode: 'required', key: TEST_REFERRAL_SIGNING_KEY, previousKey: previous });
  });

  it.each([
    ['shorter than 32 bytes', 'p'.repeat(31), 'REFERRAL_SIGNING_KEY_PREVIOUS must be at least 32 bytes'],
    ['the current key', TEST_REFERRAL_SIGNING_KEY, 'REFERRAL_SIGNING_KEY_PREVIOUS must differ from REFERRAL_SIGNING_KEY'],
  ])('refuses a REFERRAL_SIGNING_KEY_PREVIOUS %s, without echoing it', (_label, previous, problem) => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNING_KEY_PREVIOUS: previous }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain(problem);
    expect(error.message).not.toContain(previous);
  });

  it('with REFERRAL_SIGNATURES=off, needs no key and checks no signature', () => {
    // Act
    const config = loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNATURES: ' OFF ', REFERRAL_SIGNING_KEY: undefined });

    // Assess
    expect(config.rules.referralSignatures).toEqual({ mode: 'off' });
  });

  it.each(['false', 'optional', 'no'])('refuses REFERRAL_SIGNATURES=%s rather than guess whether unsigned referrals are paid', (mode) => {
    // Act
    const error = permanentError(() => loadWorkerConfig({ ...WORKER_ENV, REFERRAL_SIGNATURES: mode }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain('REFERRAL_SIGNATURES must be required or off');
  });
});

describe('loadIngestConfig', () => {
  it('reads the secret and queue URL, with default event and property names', () => {
    // Act
    const config = loadIngestConfig(INGEST_ENV);

    // Assess
    expect(config).toEqual({
      webhookSecret: 'webhook-secret-0123456789abcdefghij',
      webhookSigningSecret: undefined,
      referralEvent: 'referral redeemed',
      referrerEmailProperty: 'referrer_email',
      redeemerEmailProperty: 'redeemer_email',
      queueUrl: INGEST_ENV.QUEUE_URL,
    });
  });

  it('uses the event and property names it is given', () => {
    // Act
    const config = loadIngestConfig({
      ...INGEST_ENV,
      REFERRAL_EVENT: 'Invite Accepted',
      REFERRER_EMAIL_PROPERTY: 'inviter',
      REDEEMER_EMAIL_PROPERTY: 'invitee',
    });

    // Assess
    expect(config).toMatchObject({ referralEvent: 'Invite Accepted', referrerEmailProperty: 'inviter', redeemerEmailProperty: 'invitee' });
  });

  it.each([
    ['WEBHOOK_SECRET', undefined],
    ['WEBHOOK_SECRET', ''],
    ['QUEUE_URL', undefined],
    ['QUEUE_URL', '  '],
  ])('refuses a missing %s (%p) with config_invalid naming it', (name, value) => {
    // Act
    const error = permanentError(() => loadIngestConfig({ ...INGEST_ENV, [name]: value }));

    // Assess
    expect(error.reason).toBe('config_invalid');
    expect(error.message).toContain(`${name} is not set`);
  });
});
