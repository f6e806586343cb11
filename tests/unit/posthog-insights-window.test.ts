import { conversionWindow } from '../../ops/posthog-insights';

describe("QUALIFY_WITHIN as PostHog's funnel conversion window", () => {
  it.each([
    [30 * 86_400_000, 30, 'day'],
    [36 * 3_600_000, 36, 'hour'],
    [90 * 60_000, 90, 'minute'],
    [45_000, 45, 'second'],
  ])('writes %i ms in the largest unit that holds it exactly: %i %s', (ms, interval, unit) => {
    // Act
    const window = conversionWindow(ms);

    // Assess
    expect(window).toEqual({ funnelWindowInterval: interval, funnelWindowIntervalUnit: unit });
  });

  it('rounds a part of a second up, so the window never closes before the deadline', () => {
    // Act
    const window = conversionWindow(1_500);

    // Assess
    expect(window).toEqual({ funnelWindowInterval: 2, funnelWindowIntervalUnit: 'second' });
  });
});
