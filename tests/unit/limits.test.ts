import { loadCustomerIoConfig, loadReleaserConfig, loadWorkerConfig } from '../../lib/infra/config';
import { PermanentError } from '../../lib/domain/errors';
import { MAX_CODE_LENGTH } from '../../lib/domain/codes';
import { CUSTOMERIO_MAX_DATA_BYTES, MAX_EMAIL_LENGTH, referralLimitProblem } from '../../lib/domain/limits';
import { thrown } from '../support/failure';

const email = (bytes: number) => `${'r'.repeat(bytes - '@example.com'.length)}@example.com`;

describe('referralLimitProblem', () => {
  it("accepts a redeemer email of exactly 150 bytes, Customer.io's identifier limit", () => {
    // Act
    const problem = referralLimitProblem({ referrerEmail: 'a@example.com', redeemerEmail: email(150) });

    // Assess
    expect(problem).toBeUndefined();
  });

  it('refuses a redeemer email of 151 bytes: it could be paid but never mailed', () => {
    // Act
    const problem = referralLimitProblem({ referrerEmail: 'a@example.com', redeemerEmail: email(151) });

    // Assess
    expect(problem?.code).toBe('redeemer_email_too_long');
  });

  it('accepts a referrer email of 254 characters: it is event data, not an identifier', () => {
    // Act
    const problem = referralLimitProblem({ referrerEmail: email(254), redeemerEmail: 'b@example.com' });

    // Assess
    expect(problem).toBeUndefined();
  });

  it("bounds the event data far below Customer.io's data limit, so no referral can exceed it", () => {
    // Prepare: the largest event data the worker can send, two codes and two emails at their longest
    const MAX_EVENT_DATA_BYTES = JSON.stringify({
      discountreferrer: 'X'.repeat(MAX_CODE_LENGTH),
      discountreferee: 'X'.repeat(MAX_CODE_LENGTH),
      referreremail: 'x'.repeat(MAX_EMAIL_LENGTH),
      refereeemail: 'x'.repeat(MAX_EMAIL_LENGTH),
    }).length;

    // Assess
    expect(MAX_EVENT_DATA_BYTES).toBeLessThan(CUSTOMERIO_MAX_DATA_BYTES / 100);
  });
});

describe('loadWorkerConfig: Customer.io limits', () => {
  it('refuses a CUSTOMERIO_EVENT longer than 100 bytes at start, before any reward is issued', () => {
    // Prepare
    const env = {
      TABLE_NAME: 't',
      DLQ_URL: 'https://sqs.example/dlq',
      SHOPIFY_STORE_DOMAIN: 'shop.myshopify.com',
      SHOPIFY_ACCESS_TOKEN: 'shpat_x',
      CUSTOMERIO_SITE_ID: 's',
      CUSTOMERIO_API_KEY: 'k',
      CUSTOMERIO_EVENT: 'é'.repeat(51),
    };

    // Act
    const error = thrown(() => loadWorkerConfig(env), PermanentError);

    // Assess
    expect(error).toMatchObject({ reason: 'config_invalid', message: expect.stringContaining('CUSTOMERIO_EVENT') });
  });
});

describe('CUSTOMERIO_STATUS_EVENT at start', () => {
  const workerEnv = {
    TABLE_NAME: 't',
    DLQ_URL: 'https://sqs.example/dlq',
    SHOPIFY_STORE_DOMAIN: 'shop.myshopify.com',
    SHOPIFY_ACCESS_TOKEN: 'shpat_x',
    CUSTOMERIO_SITE_ID: 's',
    CUSTOMERIO_API_KEY: 'k',
    REFERRAL_SIGNATURES: 'off',
  };
  const releaserEnv = { TABLE_NAME: 't', QUEUE_URL: 'https://sqs.example/queue' };

  it('is off when unset or empty, for the worker and the releaser', () => {
    // Act
    const worker = loadWorkerConfig({ ...workerEnv, CUSTOMERIO_STATUS_EVENT: '  ' });
    const releaser = loadReleaserConfig(releaserEnv);

    // Assess
    expect(worker.customerio.statusEvent).toBeUndefined();
    expect(releaser.statusEvent).toBeUndefined();
  });

  it('names the status event for the worker and the releaser when set', () => {
    // Act
    const worker = loadWorkerConfig({ ...workerEnv, CUSTOMERIO_STATUS_EVENT: ' referral_status ' });
    const releaser = loadReleaserConfig({ ...releaserEnv, CUSTOMERIO_STATUS_EVENT: 'referral_status' });

    // Assess
    expect(worker.customerio.statusEvent).toBe('referral_status');
    expect(releaser.statusEvent).toBe('referral_status');
  });

  it("refuses a name longer than Customer.io's 100 bytes in the worker and the releaser", () => {
    // Prepare
    const long = { CUSTOMERIO_STATUS_EVENT: 'é'.repeat(51) };

    // Act
    const worker = thrown(() => loadWorkerConfig({ ...workerEnv, ...long }), PermanentError);
    const releaser = thrown(() => loadReleaserConfig({ ...releaserEnv, ...long }), PermanentError);

    // Assess
    for (const error of [worker, releaser]) {
      expect(error).toMatchObject({ reason: 'config_invalid', message: expect.stringContaining('CUSTOMERIO_STATUS_EVENT') });
    }
  });

  it("refuses the fulfilment event's name in the worker and the releaser: every status would start the campaign that mails the codes", () => {
    // Prepare
    const same = { CUSTOMERIO_EVENT: 'referral_paid', CUSTOMERIO_STATUS_EVENT: 'referral_paid' };

    // Act
    const worker = thrown(() => loadWorkerConfig({ ...workerEnv, ...same }), PermanentError);
    const releaser = thrown(() => loadReleaserConfig({ ...releaserEnv, ...same }), PermanentError);

    // Assess
    for (const error of [worker, releaser]) expect(error.message).toContain('CUSTOMERIO_STATUS_EVENT must differ from CUSTOMERIO_EVENT');
  });

  it('reads Customer.io alone for the releaser: credentials and the status event, no Shopify setting', () => {
    // Act
    const config = loadCustomerIoConfig({
      CUSTOMERIO_SITE_ID: 's',
      CUSTOMERIO_API_KEY: 'k',
      CUSTOMERIO_REGION: 'eu',
      CUSTOMERIO_STATUS_EVENT: 'referral_status',
    });

    // Assess
    expect(config).toEqual({
      trackUrl: 'https://track-eu.customer.io',
      siteId: 's',
      apiKey: 'k',
      eventName: 'pyramid_scheme_fulfillment',
      statusEvent: 'referral_status',
    });
  });
});
