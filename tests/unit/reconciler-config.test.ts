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
