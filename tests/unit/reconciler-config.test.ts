import { loadReconcilerConfig, type Env } from '../../lib/infra/config';
import { PermanentError } from '../../lib/domain/errors';
import { thrown } from '../support/failure';

const ON: Env = {
  POSTHOG_PROJECT_ID: '12345',
  POSTHOG_PERSONAL_API_KEY: 'phx_test_key',
  RECONCILE_FROM: '2026-07-01T00:00:00Z',
  TABLE_NAME: 'referral-rewards-ledger',
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/referral-rewards-queue',
};

describe('loadReconcilerConfig', () => {
  it('is off when none of the PostHog settings nor RECONCILE_FROM is set', () => {
    // Act
    const config = loadReconcilerConfig({ TABLE_NAME: 't', QUEUE_URL: 'q' });

    // Assess
    expect(config).toEqual({ enabled: false });
  });

  it('has the documented defaults once on', () => {
    // Act
    const config = loadReconcilerConfig(ON);

    // Assess
    expect(config).toMatchObject({
      enabled: true,
      posthog: { appHost: 'https://us.posthog.com', projectId: '12345', personalApiKey: 'phx_test_key' },
      from: Date.parse('2026-07-01T00:00:00Z'),
      lookbackMs: 72 * 3_600_000,
      minAgeMs: 5 * 60_000,
      intervalMs: 15 * 60_000,
      referralEvent: 'referral redeemed',
    });
  });

  it('refuses to turn on without RECONCILE_FROM, naming it', () => {
    // Act
    const error = thrown(() => loadReconcilerConfig({ ...ON, RECONCILE_FROM: '' }), PermanentError);

    // Assess
    expect(error.message).toContain('RECONCILE_FROM is not set');
  });

  it.each([
    ['RECONCILE_FROM', 'yesterday', 'RECONCILE_FROM must be an ISO timestamp'],
    ['RECONCILE_LOOKBACK', '72', 'RECONCILE_LOOKBACK must be a duration'],
    ['RECONCILE_INTERVAL', '0m', 'RECONCILE_INTERVAL must be a duration'],
    ['POSTHOG_PROJECT_ID', 'my-project', 'POSTHOG_PROJECT_ID must be the numeric project id'],
    ['POSTHOG_APP_HOST', 'us.posthog.com', 'POSTHOG_APP_HOST must be a URL'],
  ])('refuses %s=%p', (name, value, problem) => {
    // Act
    const error = thrown(() => loadReconcilerConfig({ ...ON, [name]: value }), PermanentError);

    // Assess
    expect(error.message).toContain(problem);
  });

  it('accepts RECONCILE_MIN_AGE=0s (a local demo recovers at once)', () => {
    // Act
    const config = loadReconcilerConfig({ ...ON, RECONCILE_MIN_AGE: '0s' });

    // Assess
    expect(config).toMatchObject({ enabled: true, minAgeMs: 0 });
  });
});

describe('loadReconcilerConfig: the catch-up settings', () => {
  it('is off (no qualifying or refund event) by default, with QUALIFY_WITHIN 30d', () => {
    // Act
    const config = loadReconcilerConfig(ON);

    // Assess
    expect(config).toMatchObject({ personEvents: { qualifyWithinMs: 30 * 86_400_000 } });
    expect(config.enabled && config.personEvents.qualifyEvent).toBeUndefined();
  });

  it('reads QUALIFY_EVENT, QUALIFY_WHERE, QUALIFY_WITHIN and REVOKE_EVENT', () => {
    // Act
    const config = loadReconcilerConfig({
      ...ON,
      QUALIFY_EVENT: 'subscription paid',
      QUALIFY_WHERE: 'toFloat(properties.amount) >= 20',
      QUALIFY_WITHIN: '14d',
      REVOKE_EVENT: 'subscription refunded',
    });

    // Assess
    expect(config).toMatchObject({
      personEvents: {
        qualifyEvent: 'subscription paid',
        qualifyWhere: 'toFloat(properties.amount) >= 20',
        qualifyWithinMs: 14 * 86_400_000,
        revokeEvent: 'subscription refunded',
      },
    });
  });

  it.each([
    ['QUALIFY_WHERE', '1 = 1; DROP TABLE events', 'QUALIFY_WHERE must not contain ";"'],
    ['QUALIFY_WHERE', '1 = 1) OR (1 = 1', 'QUALIFY_WHERE has an unbalanced ")"'],
    ['QUALIFY_WITHIN', '30', 'QUALIFY_WITHIN must be a duration'],
  ])('refuses %s=%p', (name, value, problem) => {
    // Act
    const error = thrown(() => loadReconcilerConfig({ ...ON, QUALIFY_EVENT: 'subscription paid', [name]: value }), PermanentError);

    // Assess
    expect(error.message).toContain(problem);
  });

  it('refuses QUALIFY_WHERE without QUALIFY_EVENT', () => {
    // Act
    const error = thrown(() => loadReconcilerConfig({ ...ON, QUALIFY_WHERE: 'toFloat(properties.amount) >= 20' }), PermanentError);

    // Assess
    expect(error.message).toContain('QUALIFY_WHERE filters QUALIFY_EVENT: set QUALIFY_EVENT too');
  });
});
