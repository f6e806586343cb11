import { PermanentError } from '../../lib/errors';
import { loadLifecycleConfig } from '../../lib/config';
import { isDisposableEmail } from '../../lib/lifecycle/disposable';
import { formatDuration, parseDuration, parseRate } from '../../lib/lifecycle/duration';
import { thrown } from '../support/failure';

describe('lifecycle settings', () => {
  it('reads durations as people write them', () => {
    // Act + Assess
    expect(['0', '90s', '15m', '36h', '14d'].map(parseDuration)).toEqual([0, 90_000, 900_000, 129_600_000, 1_209_600_000]);
    expect(['', '1.5h', '10', '-1d', '3w'].map(parseDuration)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(formatDuration(129_600_000)).toBe('36h');
  });

  it('reads a velocity as N per window', () => {
    expect(parseRate('5/24h')).toEqual({ count: 5, windowMs: 86_400_000 });
    expect(parseRate('0/24h')).toBeUndefined();
    expect(parseRate('5 per day')).toBeUndefined();
  });

  it('names every malformed lifecycle setting in one error', () => {
    // Act
    const error = thrown(() => loadLifecycleConfig({ REWARD_HOLD: '2 weeks', PROGRAM_DAILY_BUDGET: '-5', REVIEW_REFERRER_VELOCITY: 'fast' }), PermanentError);

    // Assess
    expect(error.message).toMatch(/REWARD_HOLD.*REVIEW_REFERRER_VELOCITY.*PROGRAM_DAILY_BUDGET/);
  });

  it('keeps every guard off by default', () => {
    expect(loadLifecycleConfig({})).toEqual({ holdMs: 0, dailyBudgetCents: undefined, monthlyBudgetCents: undefined, velocity: undefined, reviewDisposable: false });
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
