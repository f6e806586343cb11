/**
 * The program's insights as PostHog query objects (InsightVizNode wrapping a TrendsQuery /
 * FunnelsQuery, not the legacy `filters`), and the event names they count.
 */

export const DEFAULT_EVENTS = {
  redeemed: 'referral redeemed',
  fulfilled: 'referral reward fulfilled',
  rejected: 'referral reward rejected',
} as const;

/** Captured by the reward lifecycle (lib/domain/lifecycle/capture.ts); names fixed by this service, not configurable. */
export const LIFECYCLE_EVENTS = ['referral reward held', 'referral reward released', 'referral reward revoked'] as const;

export const DEFAULT_DASHBOARD_NAME = 'Referral rewards';
export const DEFAULT_DATE_FROM = '-30d';

export interface ProgramEvents {
  redeemed: string;
  fulfilled: string;
  rejected: string;
}

export type InsightKey = 'outcomes' | 'rejections' | 'funnel';

export interface InsightDefinition {
  key: InsightKey;
  name: string;
  description: string;
  query: Record<string, unknown>;
}

/** Ends every description, so whoever edits an insight in PostHog learns that a re-run restores it. */
export const MANAGED_NOTE = 'Managed by referral-rewards ops/posthog-insights.ts: re-running it restores this definition.';

const eventsNode = (event: string) => ({ kind: 'EventsNode', event, name: event, math: 'total' });

/** The three insights, as PostHog query objects (InsightVizNode + TrendsQuery / FunnelsQuery). */
export function insightDefinitions(events: ProgramEvents, dateFrom: string = DEFAULT_DATE_FROM): InsightDefinition[] {
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
