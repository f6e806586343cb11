/**
 * The program's insights as PostHog query objects (InsightVizNode wrapping a TrendsQuery /
 * FunnelsQuery, not the legacy `filters`), and the event names they count.
 */

export const DEFAULT_EVENTS = {
  redeemed: 'referral redeemed',
  fulfilled: 'referral reward fulfilled',
  rejected: 'referral reward rejected',
} as const;

/**
 * Captured when the redeemer's QUALIFY_EVENT arrives in time (pay on value: README "Outcomes in
 * PostHog"); fixed by this service, not configurable.
 */
export const QUALIFIED_EVENT = 'referral reward qualified';

/** Captured by the reward lifecycle (lib/domain/lifecycle/capture.ts); names fixed by this service, not configurable. */
export const LIFECYCLE_EVENTS = ['referral reward held', 'referral reward released', 'referral reward revoked'] as const;

export const DEFAULT_DASHBOARD_NAME = 'Referral rewards';
export const DEFAULT_DATE_FROM = '-30d';

export interface ProgramEvents {
  redeemed: string;
  fulfilled: string;
  rejected: string;
}

export type InsightKey = 'outcomes' | 'rejections' | 'funnel' | 'qualification' | 'time_to_qualify';

/** Pay on value (QUALIFY_EVENT): how long a redeemer has to qualify (QUALIFY_WITHIN), the funnels' conversion window. */
export interface Qualification {
  withinMs: number;
}

export interface InsightDefinition {
  key: InsightKey;
  name: string;
  description: string;
  query: Record<string, unknown>;
}

/** Ends every description, so whoever edits an insight in PostHog learns that a re-run restores it. */
export const MANAGED_NOTE = 'Managed by referral-rewards ops/posthog-insights.ts: re-running it restores this definition.';

const eventsNode = (event: string) => ({ kind: 'EventsNode', event, name: event, math: 'total' });

/**
 * The three insights, as PostHog query objects (InsightVizNode + TrendsQuery / FunnelsQuery), and
 * with pay on value the qualification funnel and the time to qualify.
 */
export function insightDefinitions(
  events: ProgramEvents,
  dateFrom: string = DEFAULT_DATE_FROM,
  qualification?: Qualification,
): InsightDefinition[] {
  return [...programInsights(events, dateFrom), ...(qualification ? qualificationInsights(events, dateFrom, qualification) : [])];
}

function programInsights(events: ProgramEvents, dateFrom: string): InsightDefinition[] {
  return [
    {
      key: 'outcomes',
      name: 'Referral rewards: redeemed vs fulfilled vs rejected',
      description: `Daily count of "${events.redeemed}", "${events.fulfilled}" and "${events.rejected}". ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'TrendsQuery',
          series: [
            eventsNode(events.redeemed),
            eventsNode(events.fulfilled),
            eventsNode(events.rejected),
            ...LIFECYCLE_EVENTS.map(eventsNode),
          ],
          interval: 'day',
          dateRange: { date_from: dateFrom },
          trendsFilter: { display: 'ActionsLineGraph' },
        },
      },
    },
    {
      key: 'rejections',
      name: 'Referral rewards: rejected by reason',
      description:
        `Daily count of "${events.rejected}" broken down by its reason property ` +
        `(self_referral, redeemer_already_rewarded, referrer_cap_reached, blocked_domain, unsigned_referral, bad_referral_signature, ` +
        `unknown_referral_code, referral_code_required). ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'TrendsQuery',
          series: [eventsNode(events.rejected)],
          interval: 'day',
          dateRange: { date_from: dateFrom },
          breakdownFilter: { breakdown: 'reason', breakdown_type: 'event' },
          trendsFilter: { display: 'ActionsBar' },
        },
      },
    },
    {
      key: 'funnel',
      name: 'Referral rewards: redeemed → fulfilled funnel',
      description:
        `Share of people who did "${events.redeemed}" and then got "${events.fulfilled}" within 14 days. ` +
        `Both events must carry the redeemer's distinct id. ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'FunnelsQuery',
          series: [
            { kind: 'EventsNode', event: events.redeemed, name: events.redeemed },
            { kind: 'EventsNode', event: events.fulfilled, name: events.fulfilled },
          ],
          dateRange: { date_from: dateFrom },
          funnelsFilter: {
            funnelVizType: 'steps',
            funnelOrderType: 'ordered',
            funnelWindowInterval: 14,
            funnelWindowIntervalUnit: 'day',
          },
        },
      },
    },
  ];
}

/**
 * A duration as PostHog's funnel conversion window: the largest of its units that holds it exactly
 * (FunnelConversionWindowTimeUnit: second, minute, hour, day, week, month, in PostHog's
 * posthog/schema.py; `funnelWindowInterval` is a whole number in FunnelsFilter,
 * frontend/src/queries/schema/schema-general.ts). Weeks and months are left out: a month is not a
 * fixed length, and `14d` reads better than `2 week`.
 */
export function conversionWindow(ms: number): { funnelWindowInterval: number; funnelWindowIntervalUnit: string } {
  const units: [string, number][] = [
    ['day', 86_400_000],
    ['hour', 3_600_000],
    ['minute', 60_000],
    ['second', 1_000],
  ];
  for (const [unit, size] of units) {
    if (ms >= size && ms % size === 0) return { funnelWindowInterval: ms / size, funnelWindowIntervalUnit: unit };
  }
  // Under a second, or not whole seconds: rounded up, so the window never ends before the deadline.
  return { funnelWindowInterval: Math.max(1, Math.ceil(ms / 1_000)), funnelWindowIntervalUnit: 'second' };
}

/** The window in words for a description: `30 days`, `36 hours`. */
function windowText(ms: number): string {
  const { funnelWindowInterval: n, funnelWindowIntervalUnit: unit } = conversionWindow(ms);
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/**
 * Pay on value, seen in PostHog: how many redeemers qualify within QUALIFY_WITHIN and are then paid,
 * and how long qualifying takes (FunnelsQuery with funnelVizType `time_to_convert`, PostHog's
 * FunnelVizType in posthog/schema.py). Every step is captured on the redeemer's distinct id.
 */
function qualificationInsights(events: ProgramEvents, dateFrom: string, { withinMs }: Qualification): InsightDefinition[] {
  const window = conversionWindow(withinMs);
  const step = (event: string) => ({ kind: 'EventsNode', event, name: event });
  return [
    {
      key: 'qualification',
      name: 'Referral rewards: redeemed → qualified → rewarded funnel',
      description:
        `Share of people who did "${events.redeemed}", then qualified ("${QUALIFIED_EVENT}") and got "${events.fulfilled}", ` +
        `within ${windowText(withinMs)} (QUALIFY_WITHIN). A hold (REWARD_HOLD) after qualifying delays the last step. ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'FunnelsQuery',
          series: [step(events.redeemed), step(QUALIFIED_EVENT), step(events.fulfilled)],
          dateRange: { date_from: dateFrom },
          funnelsFilter: { funnelVizType: 'steps', funnelOrderType: 'ordered', ...window },
        },
      },
    },
    {
      key: 'time_to_qualify',
      name: 'Referral rewards: time to qualify',
      description:
        `How long people took from "${events.redeemed}" to "${QUALIFIED_EVENT}" (their qualifying event), ` +
        `among those who qualified within ${windowText(withinMs)} (QUALIFY_WITHIN). ${MANAGED_NOTE}`,
      query: {
        kind: 'InsightVizNode',
        source: {
          kind: 'FunnelsQuery',
          series: [step(events.redeemed), step(QUALIFIED_EVENT)],
          dateRange: { date_from: dateFrom },
          funnelsFilter: { funnelVizType: 'time_to_convert', funnelOrderType: 'ordered', ...window },
        },
      },
    },
  ];
}
