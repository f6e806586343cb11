/**
 * The soak's sequence cases (issue #10): orderings and retries that once lost, misdirected or
 * doubled money, replayed round after round on the real pipeline under the same Shopify and
 * Customer.io faults as the main soak, then a faults-off redrive, and counted on the fakes.
 *
 * - cap-steal (#10.1): referral A from a referrer at the cap claims a new redeemer and its cap
 *   check fails once; B brings the same redeemer through an eligible referrer. The redeemer must
 *   be paid exactly once (by B), A refused for the cap.
 * - expiry (#10.4): REWARD_EXPIRES_DAYS is 30 and the worker's clock jumps 3 days whenever such a
 *   referral crashes right after begin. Every card must be created with 30 days left on the
 *   clock of its creation, and the ledger must record the date each reward really carries.
 * - two-stories (#10.5): a second webhook reuses a referral's uuid with other people. Whichever
 *   began first is the ledger's copy; the Customer.io event and the PostHog capture must name it.
 * - type-switch (#10.6): REWARD_TYPE flips between gift_card and discount_code while referrals
 *   are in flight. Each role gets one reward, of the type the ledger fixed at begin.
 */
import type { Ledger, LedgerRecord, Role } from '../lib/adapters/dynamodb/ledger';
import { ROLES } from '../lib/adapters/dynamodb/ledger';
import { RetryableError } from '../lib/domain/errors';
import { sleep } from '../lib/infra/retry';
import { expiryDate, parseGiftCardNote } from '../lib/domain/rewards';
import { ulidFromUuid } from '../lib/infra/ulid';
import type { CustomerIoFault } from '../local/sandbox/customerio';
import type { ShopifyFault } from '../local/sandbox/shopify';
import { Pipeline, referralBody } from '../tests/support/pipeline';
import type { ReferralProblem } from './report';
import { pick, settle } from './harness';

export const SEQUENCE_CASES = ['cap-steal', 'expiry', 'two-stories', 'type-switch'] as const;
export type SequenceCase = (typeof SEQUENCE_CASES)[number];

export interface SequenceOptions {
  rounds: number;
  faultRate: number;
  /** Draws the faults, as the main soak's streams do. */
  rng: () => number;
  shopifyFaults: readonly ShopifyFault[];
  customerioFaults: readonly CustomerIoFault[];
  pollers: number;
  visibilityTimeoutSeconds: number;
  workerTimeoutMs: number;
  clientTimeoutMs: number;
  log: (line: string) => void;
}

export interface SequenceReport {
  rounds: number;
  cases: Record<SequenceCase, number>;
  lost: number;
  doubled: number;
  /** Rewards created with less than REWARD_EXPIRES_DAYS left, or recorded with another date than they carry. */
  expiryWrong: number;
  /** Customer.io events or PostHog captures naming other people than the ledger's copy. */
  misdirected: number;
  problems: ReferralProblem[];
}

const DAYS = 30;
const DAY = 86_400_000;

interface Planted {
  kind: SequenceCase;
  uuid: string;
  /** cap-steal's A: must be refused (the redeemer is B's). */
  refused?: boolean;
}

export async function runSequences(options: SequenceOptions): Promise<SequenceReport> {
  const problems: ReferralProblem[] = [];
  const problem = (eventId: string, text: string) => problems.push({ eventId, problem: `sequence: ${text}`, trace: [] });
  const report: SequenceReport = {
    rounds: options.rounds,
    cases: { 'cap-steal': 0, expiry: 0, 'two-stories': 0, 'type-switch': 0 },
    lost: 0,
    doubled: 0,
    expiryWrong: 0,
    misdirected: 0,
    problems,
  };

  // The worker's clock; a jump is "in effect" for checks only once requests begun before it are done.
  let offset = 0;
  let previousOffset = 0;
  let jumpedAt = 0;
  const failSlotOnce = new Set<string>();
  const crashAfterBegin = new Set<string>();
  let chaos = true;
  const pipeline: Pipeline = await Pipeline.start({
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
    workerTimeoutMs: options.workerTimeoutMs,
    clientTimeoutMs: options.clientTimeoutMs,
    pollWaitTimeSeconds: 1,
    env: { MAX_REWARDS_PER_REFERRER: '1', REWARD_EXPIRES_DAYS: String(DAYS) },
    now: () => Date.now() + offset,
    wrapLedger: (ledger) =>
      Object.assign(Object.create(ledger) as Ledger, {
        count: async (...args: Parameters<Ledger['count']>) => {
          const [counter, eventId] = args;
          if (counter.kind === 'referrer' && failSlotOnce.delete(eventId)) throw new RetryableError('sequence: the cap check fails once');
          return ledger.count(...args);
        },
      }),
    checkpoint: (step, eventId) => {
      if (step !== 'begun' || !crashAfterBegin.delete(eventId)) return;
      previousOffset = offset;
      offset += 3 * DAY;
      jumpedAt = Date.now();
      throw new Error('sequence: crash after begin, the retry comes 3 days later');
    },
    shopify: {
      bucket: { size: 1000, restoreRate: 5_000 },
      onCard: (card) => {
        // The date was chosen on the worker's clock a moment ago, maybe just before a jump.
        const clock = Date.now() - 60_000 + (Date.now() - jumpedAt < 10_000 ? previousOffset : offset);
        if (card.expiresOn === null || card.expiresOn < expiryDate(clock, DAYS)) {
          report.expiryWrong++;
          problem(parseGiftCardNote(card.note)?.eventId ?? '?', `card created with expiry ${card.expiresOn}, less than ${DAYS} days left`);
        }
      },
    },
  });
  pipeline.shopify.setFaultPolicy(() =>
    chaos && options.rng() < options.faultRate ? pick(options.rng, options.shopifyFaults) : undefined,
  );
  pipeline.customerio.setFaultPolicy(() =>
    chaos && options.rng() < options.faultRate ? pick(options.rng, options.customerioFaults) : undefined,
  );

  const planted: Planted[] = [];
  try {
    // Each round's capped referrer uses its one slot first.
    for (let round = 0; round < options.rounds; round++)
      await pipeline.post(referralBody({ referrer: `capped-${round}@example.com` }).body);
    pipeline.poller.start(options.pollers);
    await settle(pipeline, Date.now() + 120_000);

    for (let round = 0; round < options.rounds; round++) {
      pipeline.env.REWARD_TYPE = round % 2 === 0 ? 'gift_card' : 'discount_code';
      const redeemer = `newcomer-${round}@example.com`;
      const capped = referralBody({ referrer: `capped-${round}@example.com`, redeemer });
      const eligible = referralBody({ referrer: `eligible-${round}@example.com`, redeemer });
      failSlotOnce.add(capped.uuid);
      const expiring = referralBody();
      crashAfterBegin.add(expiring.uuid);
      const story = referralBody();
      const otherStory = referralBody({
        uuid: story.uuid,
        referrer: `mallory-${round}@example.com`,
        redeemer: `mallory-${round}.two@example.com`,
      });
      const switching = Array.from({ length: 3 }, () => referralBody());
      planted.push(
        { kind: 'cap-steal', uuid: capped.uuid, refused: true },
        { kind: 'cap-steal', uuid: eligible.uuid },
        { kind: 'expiry', uuid: expiring.uuid },
        { kind: 'two-stories', uuid: story.uuid },
        ...switching.map(({ uuid }) => ({ kind: 'type-switch' as const, uuid })),
      );
      for (const body of [capped.body, eligible.body, expiring.body, story.body, ...switching.map((s) => s.body)])
        await pipeline.post(body);
      await pipeline.post(otherStory.body);
      await sleep(300);
      // Mid-flight: some of this round's rewards exist as one type, the rest are still to come.
      pipeline.env.REWARD_TYPE = round % 2 === 0 ? 'discount_code' : 'gift_card';
      await settle(pipeline, Date.now() + 120_000);
      for (const kind of SEQUENCE_CASES) report.cases[kind]++;
    }
    await pipeline.poller.stop();

    // Faults off, redrive, drain: what is owed must be paid now.
    chaos = false;
    for (let round = 0; round < 5 && (await pipeline.redrive()) > 0; round++) await pipeline.drain(120_000);
    await pipeline.drain(120_000);

    for (const referral of planted) check(pipeline, referral, await pipeline.record(referral.uuid), report, problem);
    return report;
  } finally {
    chaos = false;
    await pipeline.stop();
  }
}

function check(
  pipeline: Pipeline,
  referral: Planted,
  record: LedgerRecord | undefined,
  report: SequenceReport,
  problem: (id: string, text: string) => void,
): void {
  const { uuid } = referral;
  const rewards = [
    ...pipeline.shopify.cards.map((card) => ({
      type: 'gift_card',
      note: parseGiftCardNote(card.note),
      expiresOn: card.expiresOn ?? undefined,
    })),
    ...pipeline.shopify.discounts.map((d) => ({
      type: 'discount_code',
      note: parseGiftCardNote(d.title),
      expiresOn: d.endsAt?.slice(0, 10),
    })),
  ].filter(({ note }) => note?.eventId === uuid);
  if (referral.refused) {
    // Refused for the cap, or for the redeemer if the eligible referral was decided first: either way, not paid.
    if (record?.status !== 'REJECTED' || !['referrer_cap_reached', 'redeemer_already_rewarded'].includes(record.rejectionReason ?? '')) {
      problem(uuid, `${referral.kind}: expected REJECTED, got ${record?.status} ${record?.rejectionReason ?? ''}`);
    }
    if (rewards.length > 0) report.doubled++;
    return;
  }
  if (record?.status !== 'COMPLETED') {
    report.lost++;
    problem(uuid, `${referral.kind}: expected COMPLETED, got ${record?.status} ${record?.rejectionReason ?? record?.failureReason ?? ''}`);
  }
  for (const role of ROLES) {
    const mine = rewards.filter(({ note }) => note?.role === role);
    if (mine.length === 0) report.lost++;
    if (mine.length > 1 || mine.some(({ type }) => type !== record?.rewardType)) {
      report.doubled++;
      problem(uuid, `${referral.kind}: ${role} got ${mine.map(({ type }) => type).join(' + ')}, began as ${record?.rewardType}`);
    }
    if (mine.length === 1 && mine[0].expiresOn !== record?.[`${role as Role}ExpiresOn`]) {
      report.expiryWrong++;
      problem(
        uuid,
        `${referral.kind}: ${role} reward carries ${mine[0].expiresOn}, the ledger says ${record?.[`${role as Role}ExpiresOn`]}`,
      );
    }
  }
  if (!record) return;
  const events = pipeline.customerio.events.filter((event) => event.id === ulidFromUuid(uuid));
  const captures = pipeline.posthog.captures.filter((capture) => capture.properties.referral_event_id === uuid);
  const misdirected =
    events.some(
      (e) =>
        e.identifier !== record.customerEmail.toLowerCase() ||
        e.data.refereeemail !== record.redeemerEmail ||
        e.data.referreremail !== record.referrerEmail,
    ) || captures.some((c) => c.distinctId !== record.distinctId || c.properties.redeemer_email !== record.redeemerEmail);
  if (misdirected) {
    report.misdirected++;
    problem(uuid, `${referral.kind}: the Customer.io event or PostHog capture names other people than the ledger's`);
  }
}
