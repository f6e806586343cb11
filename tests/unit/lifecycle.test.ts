import { PermanentError } from '../../lib/domain/errors';
import { loadLifecycleConfig } from '../../lib/infra/config';
import { isDisposableEmail } from '../../lib/domain/lifecycle/disposable';
import { thrown } from '../support/failure';

describe('lifecycle settings', () => {
  it('names every malformed lifecycle setting in one error', () => {
    // Act
    const error = thrown(
      () => loadLifecycleConfig({ REWARD_HOLD: '2 weeks', PROGRAM_DAILY_BUDGET: '-5', REVIEW_REFERRER_VELOCITY: 'fast' }),
      PermanentError,
    );

    // Assess
    expect(error.message).toMatch(/REWARD_HOLD.*REVIEW_REFERRER_VELOCITY.*PROGRAM_DAILY_BUDGET/);
  });

  it("refuses a velocity guard past 1000 per window (the referrer's item keeps N+1 sightings) and takes 1000", () => {
    // Act
    const error = thrown(() => loadLifecycleConfig({ REVIEW_REFERRER_VELOCITY: '1001/24h' }), PermanentError);
    const most = loadLifecycleConfig({ REVIEW_REFERRER_VELOCITY: '1000/24h' });

    // Assess
    expect(error.message).toMatch(/REVIEW_REFERRER_VELOCITY allows at most 1000/);
    expect(most.velocity).toEqual({ count: 1000, windowMs: 86_400_000 });
  });

  it('keeps every guard off by default', () => {
    expect(loadLifecycleConfig({})).toEqual({
      holdMs: 0,
      dailyBudgetCents: undefined,
      monthlyBudgetCents: undefined,
      velocity: undefined,
      reviewDisposable: false,
    });
  });
});

describe('disposable email domains', () => {
  it('recognises a domain from the package list and its subdomains, not ordinary ones', () => {
    expect(isDisposableEmail('someone@mailinator.com')).toBe(true);
    expect(isDisposableEmail('someone@eu.mailinator.com')).toBe(true);
    expect(isDisposableEmail('someone@example.com')).toBe(false);
    expect(isDisposableEmail('someone@gmail.com')).toBe(false);
  });
});
