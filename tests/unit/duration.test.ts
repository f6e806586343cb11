import { formatDuration, parseDuration, parseRate } from '../../lib/infra/duration';

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['72h', 259_200_000],
    ['14d', 1_209_600_000],
    [' 15M ', 900_000],
    ['0s', 0],
    ['0', 0],
  ])('reads %p as %p ms', (text, ms) => {
    // Act
    const parsed = parseDuration(text);

    // Assess
    expect(parsed).toBe(ms);
  });

  it.each(['15', '15 minutes', '1h30m', '-5m', '1.5h', '', 'm', '15w'])('refuses %p', (text) => {
    // Act
    const parsed = parseDuration(text);

    // Assess
    expect(parsed).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [900_000, '15m'],
    [259_200_000, '3d'],
    [90_000, '90s'],
    [7_200_000, '2h'],
  ])('spells %p ms as %p', (ms, text) => {
    // Act
    const formatted = formatDuration(ms);

    // Assess
    expect(formatted).toBe(text);
  });
});

describe('parseRate', () => {
  it('reads a velocity as N per window', () => {
    // Act + Assess
    expect(parseRate('5/24h')).toEqual({ count: 5, windowMs: 86_400_000 });
  });

  it.each(['0/24h', '5/0', '5 per day', '5/15'])('refuses %p', (text) => {
    // Act + Assess
    expect(parseRate(text)).toBeUndefined();
  });
});
