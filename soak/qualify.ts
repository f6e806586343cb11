/**
 * The soak's qualification rounds (pay on value), on a pipeline of their own with QUALIFY_EVENT,
 * QUALIFY_WHERE and REVOKE_EVENT, under the main soak's Shopify / Customer.io faults and worker
 * crashes (soak/faults.ts). Each round posts one referral per fate (a few of them twice), then
 * gives each its fate: qualified by the webhook (once, or three copies at once and later), by an
 * event that reached us before the referral, or by the reconciler's catch-up alone (the event is
 * in PostHog only); or never qualified (no event, another person's event, the redeemer's event
 * from before the referral, an unsigned one, one below QUALIFY_WHERE), or refunded while waiting
 * (also with a qualifying event after the refund). The releaser then runs past the deadline (its
 * clock moved on, as the ledger's writes are conditioned on the record, not on the time), a
 * qualifying event arrives for each expired one afterwards, and the catch-up runs again.
 *
 * The invariants, counted once faults are off and the DLQ redriven: never paid unqualified (no
 * reward for a referral without a qualifying event in its window, and none created before it was
 * qualified), never paid twice (exactly two rewards and one fulfilment event for each qualified
 * one), every expired one final (NOT_QUALIFIED, its claims given back, unmoved by a later event),
 * refunds cancel (REVOKED before payout, nothing issued).
 */
import { randomUUID } from 'node:crypto';
import { queueSender } from '../lib/adapters/sqs/queue';
import { releaseDue } from '../lib/domain/lifecycle/release';
import { QUALIFY_GRACE_MS } from '../lib/domain/qualify';
import { signPersonEvent } from '../lib/domain/vouch';
import { parseGiftCardNote } from '../lib/domain/rewards';
import type { LifecycleRecord } from '../lib/adapters/dynamodb/ledger';
import { ulidFromUuid } from '../lib/infra/ulid';
import { sleep } from '../lib/infra/retry';
import { lifecycleIndex, lifecycleLedger } from '../tests/support/lifecycle';
import { referralBody } from '../tests/support/pipeline';
import { startChaosPipeline, type ChaosPhaseOptions } from './faults';
import { prng, settle, sum } from './harness';
import type { ReferralProblem } from './report';

/** What happens to a referral after it waits; each round has one referral of each. */
export const QUALIFY_FATES = [
  'webhook',
  'webhook-copies',
  'before-referral',
  'catch-up',
  'no-event',
  'other-person',
  'too-early',
  'unsigned',
  'below-where',
  'refund',
  'refund-then-qualify',
] as const;
export type QualifyFate = (typeof QUALIFY_FATES)[number];

/** The fates that must end paid, exactly once. */
const QUALIFYING: ReadonlySet<QualifyFate> = new Set(['webhook', 'webhook-copies', 'before-referral', 'catch-up']);
const REFUNDED: ReadonlySet<QualifyFate> = new Set(['refund', 'refund-then-qualify']);

const QUALIFY_EVENT = 'subscription paid';
const REVOKE_EVENT = 'subscription refunded';
const QUALIFY_WHERE = 'toFloat(properties.amount) >= 20';
const QUALIFY_WITHIN_MS = 3_600_000;
const FULFILMENT_EVENT = 'pyramid_scheme_fulfillment';

export type QualifyOptions = ChaosPhaseOptions;

export interface QualifyReport {
  rounds: number;
  referrals: number;
  fates: Record<QualifyFate, number>;
  /** How they ended. */
  paid: number;
  notQualified: number;
  cancelled: number;
  /** Person events the reconciler's catch-up queued (all runs), and qualifying events sent after expiry. */
  caughtUp: number;
  lateAfterExpiry: number;
  crashes: number;
  faults: number;
  /** Invariants: each must be 0. */
  paidUnqualified: number;
  paidBeforeQualified: number;
  paidTwice: number;
  qualifiedNotPaid: number;
  expiredNotFinal: number;
  refundedButPaid: number;
  lost: number;
  doubled: number;
  ok: boolean;
  problems: ReferralProblem[];
}

interface Waiting {
  fate: QualifyFate;
  uuid: string;
  body: Record<string, unknown>;
  redeemer: string;
  distinctId: string;
  personId: string;
  /** When the referral was captured (its event's timestamp), epoch ms. */
  capturedAt: number;
}

export async function runQualification(options: QualifyOptions): Promise<QualifyReport> {
  const problems: ReferralProblem[] = [];
  const problem = (eventId: string, text: string) => problems.push({ eventId, problem: text, trace: [] });
  const rng = prng(options.seed, 11);
  const settings = { QUALIFY_EVENT, QUALIFY_WHERE, QUALIFY_WITHIN: '1h', REVOKE_EVENT };
  const { chaos, pipeline } = await startChaosPipeline(options, { shopify: 12, customerio: 13, crash: 14 }, settings);
  const ledger = lifecycleLedger(pipeline);
  const report: QualifyReport = {
    rounds: options.rounds,
    referrals: 0,
    fates: Object.fromEntries(QUALIFY_FATES.map((fate) => [fate, 0])) as Record<QualifyFate, number>,
    paid: 0,
    notQualified: 0,
    cancelled: 0,
    caughtUp: 0,
    lateAfterExpiry: 0,
    crashes: 0,
    faults: 0,
    paidUnqualified: 0,
    paidBeforeQualified: 0,
    paidTwice: 0,
    qualifiedNotPaid: 0,
    expiredNotFinal: 0,
    refundedButPaid: 0,
    lost: 0,
    doubled: 0,
    ok: false,
    problems,
  };
  const all: Waiting[] = [];

  /** A person event as the app's backend captures it: in PostHog always, and through the webhook unless `lost`. */
  const personEvent = async (
    who: Pick<Waiting, 'distinctId' | 'personId' | 'redeemer'>,
    name: string,
    at: number,
    how: { amount?: number; signed?: boolean; lost?: boolean } = {},
  ): Promise<void> => {
    const uuid = randomUUID();
    const signature =
      how.signed === false
        ? {}
        : { referral_signature: signPersonEvent(pipeline.signingKey, { eventName: name, distinctId: who.distinctId, eventId: uuid }) };
    const properties = { amount: how.amount ?? 49, ...signature };
    const timestamp = new Date(at).toISOString();
    pipeline.posthog.record({
      uuid,
      event: name,
      distinctId: who.distinctId,
      personId: who.personId,
      properties,
      timestamp,
      personEmail: who.redeemer,
    });
    if (how.lost) return;
    const body = {
      event: { uuid, event: name, distinct_id: who.distinctId, properties, timestamp },
      person: { id: who.personId, properties: { email: who.redeemer } },
    };
    const answer = await pipeline.post(body);
    if (answer.statusCode !== 202) problem(uuid, `qualification: ${name} answered ${answer.statusCode}`);
  };
  const catchUp = async (): Promise<void> => {
    const run = await pipeline.reconcile({
      ...settings,
      RECONCILE_FROM: new Date(Date.now() - 2 * QUALIFY_WITHIN_MS).toISOString(),
      RECONCILE_MIN_AGE: '0s',
    });
    if (run.status === 'done') report.caughtUp += run.personEvents?.queued ?? 0;
  };
  const releaser = (clockAhead: number) =>
    releaseDue({
      ledger,
      index: lifecycleIndex(pipeline),
      enqueue: queueSender(pipeline.sqs, pipeline.resources.queueUrl),
      now: () => Date.now() + clockAhead,
      resendAfterMs: 1_000,
    });

  pipeline.poller.start(options.pollers);
  try {
    for (let round = 0; round < options.rounds; round++) {
      const referrals: Waiting[] = QUALIFY_FATES.map((fate, i) => {
        const { uuid, body, redeemer } = referralBody({ referrer: `qualify-${options.seed}-${round}-${i}@example.com` });
        const event = body.event as { distinct_id: string; timestamp: string };
        return {
          fate,
          uuid,
          body,
          redeemer,
          distinctId: event.distinct_id,
          personId: (body.person as { id: string }).id,
          capturedAt: Date.parse(event.timestamp),
        };
      });
      all.push(...referrals);
      for (const referral of referrals) report.fates[referral.fate]++;

      // Its qualifying event, happened just after the referral, reaches us first.
      for (const referral of referrals.filter((r) => r.fate === 'before-referral'))
        await personEvent(referral, QUALIFY_EVENT, referral.capturedAt + 1);
      // The referrals, a third of them twice at once; PostHog has each, as it delivered it.
      await Promise.all(
        referrals.flatMap(({ body }, i) => (i % 3 === 0 ? [pipeline.post(body), pipeline.post(body)] : [pipeline.post(body)])),
      );
      for (const r of referrals) {
        const event = r.body.event as { event: string; properties: Record<string, unknown>; timestamp: string };
        pipeline.posthog.record({
          uuid: r.uuid,
          event: event.event,
          distinctId: r.distinctId,
          personId: r.personId,
          properties: event.properties,
          timestamp: event.timestamp,
          personEmail: r.redeemer,
        });
      }
      await waitFor(referrals, (record) => record?.status === 'AWAITING' || Boolean(record?.qualifiedAt), 60_000);

      // The fates, in a shuffled order, the chaos still on.
      const order = [...referrals].sort(() => rng() - 0.5);
      for (const r of order) {
        // Its event happened just after the referral was captured (unless the fate says otherwise).
        const later = r.capturedAt + 10;
        switch (r.fate) {
          case 'webhook':
            await personEvent(r, QUALIFY_EVENT, later);
            break;
          case 'webhook-copies': {
            const uuid = randomUUID();
            const properties = {
              amount: 49,
              referral_signature: signPersonEvent(pipeline.signingKey, {
                eventName: QUALIFY_EVENT,
                distinctId: r.distinctId,
                eventId: uuid,
              }),
            };
            const body = {
              event: { uuid, event: QUALIFY_EVENT, distinct_id: r.distinctId, properties, timestamp: new Date(later).toISOString() },
              person: { id: r.personId, properties: { email: r.redeemer } },
            };
            await Promise.all([pipeline.post(body), pipeline.post(body), pipeline.post(body)]);
            break;
          }
          case 'catch-up':
            await personEvent(r, QUALIFY_EVENT, later, { lost: true });
            break;
          case 'other-person':
            await personEvent(
              { distinctId: `not-${r.distinctId}`, personId: randomUUID(), redeemer: `not-${r.redeemer}` },
              QUALIFY_EVENT,
              later,
            );
            break;
          case 'too-early':
            await personEvent(r, QUALIFY_EVENT, r.capturedAt - 60_000);
            break;
          case 'unsigned':
            await personEvent(r, QUALIFY_EVENT, later, { signed: false });
            break;
          case 'below-where':
            // PostHog's destination filter would drop it; the catch-up's query never asks for it. Delivered anyway, it is in PostHog only.
            await personEvent(r, QUALIFY_EVENT, later, { amount: 5, lost: true });
            break;
          case 'refund':
            await personEvent(r, REVOKE_EVENT, later);
            break;
          case 'refund-then-qualify':
            await personEvent(r, REVOKE_EVENT, later);
            await waitFor([r], (record) => record?.status === 'REVOKED', 30_000);
            await personEvent(r, QUALIFY_EVENT, later + 1);
            break;
          case 'no-event':
            break;
        }
      }
      await catchUp();
      await settle(pipeline, Date.now() + 60_000);
      // The 'webhook-copies' referral's redeemer qualifies again (another payment) once it has (probably) been paid.
      for (const r of referrals.filter((x) => x.fate === 'webhook-copies')) await personEvent(r, QUALIFY_EVENT, r.capturedAt + 12);
      await catchUp();
      await settle(pipeline, Date.now() + 60_000);

      // Past the deadline (and its grace): the releaser expires what still waits; then each gets a qualifying event anyway.
      await releaser(QUALIFY_WITHIN_MS + QUALIFY_GRACE_MS + 60_000).catch((error: unknown) =>
        options.log(`  qualification: releaser failed: ${String(error)}`),
      );
      const expired = (await Promise.all(referrals.map(async (r) => ({ r, record: await ledger.get(r.uuid) })))).filter(
        ({ record }) => record?.status === 'NOT_QUALIFIED',
      );
      for (const { r } of expired) {
        await personEvent(r, QUALIFY_EVENT, Date.now());
        report.lateAfterExpiry++;
      }
      await catchUp();
      await settle(pipeline, Date.now() + 60_000);
      options.log(`  qualification round ${round + 1}: ${referrals.length} referrals, ${expired.length} expired`);
    }
    await pipeline.poller.stop();

    // Faults off, redrive, drain, a last expiry run: what is owed must be paid, what is due must be final.
    chaos.on = false;
    pipeline.shopify.setFaultPolicy(undefined);
    pipeline.customerio.setFaultPolicy(undefined);
    for (let round = 0; round < 5 && (await pipeline.redrive()) > 0; round++) await pipeline.drain(120_000);
    await pipeline.drain(120_000);
    await releaser(QUALIFY_WITHIN_MS + QUALIFY_GRACE_MS + 60_000);
    await pipeline.drain(120_000);
  } finally {
    chaos.on = false;
    await pipeline.stop();
  }

  report.referrals = all.length;
  report.crashes = sum(chaos.crashes.soft) + sum(chaos.crashes.hard);
  report.faults = sum(chaos.faults.shopify) + sum(chaos.faults.customerio);
  const cardsBy = new Map<string, string[]>();
  for (const card of pipeline.shopify.cards) {
    const id = parseGiftCardNote(card.note)?.eventId;
    if (id) cardsBy.set(id, [...(cardsBy.get(id) ?? []), card.createdAt]);
  }
  for (const r of all) {
    const record: LifecycleRecord | undefined = await ledger.get(r.uuid);
    const cards = cardsBy.get(r.uuid) ?? [];
    const sent = pipeline.customerio.events.filter(
      (e) => e.name === FULFILMENT_EVENT && e.id.toUpperCase() === ulidFromUuid(r.uuid).toUpperCase(),
    );
    const say = (text: string) => problem(r.uuid, `qualification (${r.fate}): ${text}`);
    if (!record) {
      report.lost++;
      say('no ledger record');
      continue;
    }
    if (cards.length > 0 && !record.qualifiedAt) {
      report.paidUnqualified++;
      say(`${cards.length} reward(s) but never qualified (${record.status})`);
    }
    const qualifiedAt = Date.parse(String(record.qualifiedAt ?? ''));
    if (cards.some((createdAt) => Date.parse(createdAt) < qualifiedAt)) {
      report.paidBeforeQualified++;
      say('a reward created before it was qualified');
    }
    if (cards.length > 2 || sent.length > 1) {
      report.paidTwice++;
      report.doubled++;
      say(`${cards.length} rewards, ${sent.length} fulfilment events`);
    }
    if (QUALIFYING.has(r.fate)) {
      if (record.status !== 'COMPLETED' || cards.length !== 2 || sent.length !== 1) {
        report.qualifiedNotPaid++;
        report.lost++;
        say(`qualified, but ${record.status} with ${cards.length} rewards and ${sent.length} fulfilment events`);
      } else report.paid++;
    } else if (REFUNDED.has(r.fate)) {
      if (record.status !== 'REVOKED' || !record.revokedBeforePayout || cards.length > 0) {
        report.refundedButPaid++;
        say(`refunded, but ${record.status} with ${cards.length} rewards`);
      } else report.cancelled++;
    } else if (record.status !== 'NOT_QUALIFIED' || !record.notQualifiedDoneAt || cards.length > 0 || sent.length > 0) {
      report.expiredNotFinal++;
      say(
        `never qualified, but ${record.status}${record.notQualifiedDoneAt ? '' : ' (claims not given back)'} with ${cards.length} rewards`,
      );
    } else report.notQualified++;
  }
  report.ok =
    report.paidUnqualified +
      report.paidBeforeQualified +
      report.paidTwice +
      report.qualifiedNotPaid +
      report.expiredNotFinal +
      report.refundedButPaid +
      report.lost +
      report.doubled ===
      0 && problems.length === 0;
  return report;

  /** Waits (bounded; the count says what did not happen) until each referral's record passes `done`. */
  async function waitFor(referrals: Waiting[], done: (record: LifecycleRecord | undefined) => boolean, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const records = await Promise.all(referrals.map((r) => ledger.get(r.uuid)));
      if (records.every(done)) return;
      await sleep(200);
    }
  }
}

/** The qualification rounds' rows in the soak's table (soak/report.ts). */
export function qualificationRows(report: QualifyReport): [string, string][] {
  const fates = QUALIFY_FATES.map((fate) => `${fate} ${report.fates[fate]}`).join(', ');
  return [
    [
      'qualification rounds (pay on value), faults on',
      `${report.rounds} rounds, ${report.referrals} referrals (${fates}); ${report.crashes} crashes, ${report.faults} upstream faults`,
    ],
    [
      '… how they ended',
      `${report.paid} qualified and paid, ${report.notQualified} NOT_QUALIFIED (then ${report.lateAfterExpiry} qualifying events after the deadline, none moved one), ` +
        `${report.cancelled} cancelled by a refund; ${report.caughtUp} person events queued by the reconciler's catch-up`,
    ],
    [
      '… qualification invariants broken',
      `paid unqualified ${report.paidUnqualified}, paid before qualified ${report.paidBeforeQualified}, paid twice ${report.paidTwice}, ` +
        `qualified not paid ${report.qualifiedNotPaid}, expired not final ${report.expiredNotFinal}, refunded but paid ${report.refundedButPaid}`,
    ],
  ];
}
