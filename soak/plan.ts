/**
 * The soak's plan: which referrals, which of them the program rules must refuse, how many copies
 * of each and when they arrive, and the invalid webhooks sprinkled in. Everything here is drawn
 * from the plan's own random stream, so the same seed always gives the same plan.
 */
import { CODE_ALPHABET } from '../lib/domain/codes';
import { referralBody } from '../tests/support/pipeline';
import { pick, seededUuid, shuffle } from './harness';

/** Set explicitly, so the soak's expectations do not drift with the default. */
export const REFERRER_CAP = 10;

export type DuplicateMode = 'burst' | 'spread' | 'late';
export type PlantedKind = 'normal' | 'self' | 'repeat-redeemer' | 'capped';

export interface Planned {
  index: number;
  uuid: string;
  body: unknown;
  referrerEmail: string;
  redeemerEmail: string;
  kind: PlantedKind;
  /** Referrals that share a rule's budget: one reward per redeemer, REFERRER_CAP per referrer. */
  group?: RuleGroup;
  extra: DuplicateMode[];
}

export interface RuleGroup {
  rule: 'one-per-redeemer' | 'referrer-cap';
  members: Planned[];
  /** Rewards the group must get, exactly. */
  rewards: number;
}

export interface InvalidWebhook {
  uuid: string;
  body: unknown;
  kind: 'rejected' | 'ignored';
}

export interface Delivery {
  key: number;
  body: unknown;
  uuid: string;
  expect: 'queued' | 'rejected' | 'ignored';
}

export interface Traffic {
  planned: Planned[];
  invalid: InvalidWebhook[];
  /** The main stream, in posting order. */
  stream: Delivery[];
  /** Copies posted once the stream has settled (most of their referrals finished). */
  late: Planned[];
}

/** The whole traffic of one soak, drawn from `rng` (the plan's stream) in a fixed order. */
export function planTraffic(
  events: number,
  seed: number,
  rates: { ruleRate: number; duplicateRate: number; invalidRate: number },
  rng: () => number,
): Traffic {
  const planned = plan(events, seed, rates.ruleRate, rates.duplicateRate, rng);
  const invalid: InvalidWebhook[] = [];
  const invalidCount = Math.round(events * rates.invalidRate);
  for (let i = 0; i < invalidCount; i++) {
    const uuid = seededUuid(rng);
    const body = referralBody({ uuid, referrer: `invalid-${i}-${seed}@example.com` }).body as {
      event: { event: string; properties: Record<string, unknown> };
    };
    const kind = i % 2 === 0 ? 'rejected' : 'ignored';
    if (kind === 'rejected') delete body.event.properties.referrer_email;
    else body.event.event = '$pageview';
    invalid.push({ uuid, body, kind });
  }

  // The main stream: first copies in order, burst copies right behind them (same batch, or a
  // batch another poller holds), spread copies somewhere later, invalid webhooks sprinkled in.
  const stream: Delivery[] = [];
  for (const referral of planned) {
    stream.push({ key: referral.index, body: referral.body, uuid: referral.uuid, expect: 'queued' });
    referral.extra.forEach((mode, copy) => {
      if (mode === 'burst')
        stream.push({ key: referral.index + 0.001 * (copy + 1), body: referral.body, uuid: referral.uuid, expect: 'queued' });
      if (mode === 'spread') {
        const key = referral.index + 1 + rng() * Math.max(10, events * 0.2);
        stream.push({ key, body: referral.body, uuid: referral.uuid, expect: 'queued' });
      }
    });
  }
  for (const bad of invalid) stream.push({ key: rng() * events, body: bad.body, uuid: bad.uuid, expect: bad.kind });
  stream.sort((a, b) => a.key - b.key);
  const late = planned.flatMap((referral) => referral.extra.filter((mode) => mode === 'late').map(() => referral));
  shuffle(rng, late);
  return { planned, invalid, stream, late };
}

/**
 * The referrals. Most are ordinary (each must be rewarded exactly once); a few are planted for
 * the program rules: self-referrals (refused), pairs of referrals of one redeemer by different
 * referrers (exactly one rewarded), and REFERRER_CAP + 2 referrals by one referrer (exactly
 * REFERRER_CAP rewarded). Which member of a group wins is up to the race, not the plan.
 */
function plan(events: number, seed: number, ruleRate: number, duplicateRate: number, rng: () => number): Planned[] {
  const planned: Planned[] = [];
  const capped = new Set<number>();
  if (ruleRate > 0 && events >= 5 * (REFERRER_CAP + 2)) {
    while (capped.size < REFERRER_CAP + 2) capped.add(Math.floor(rng() * events));
  }
  const cappedGroup: RuleGroup = { rule: 'referrer-cap', members: [], rewards: REFERRER_CAP };
  const pairable: Planned[] = [];
  let selfPlanted = 0;
  let pairsPlanted = 0;
  for (let index = 0; index < events; index++) {
    const uuid = seededUuid(rng);
    let kind: PlantedKind = 'normal';
    let referrerEmail = `referrer-${index}-${seed}@example.com`;
    let redeemerEmail = `redeemer-${index}-${seed}@example.com`;
    let group: RuleGroup | undefined;
    const r = rng();
    if (capped.has(index)) {
      kind = 'capped';
      referrerEmail = `capped-referrer-${seed}@example.com`;
      group = cappedGroup;
    } else if (ruleRate > 0 && (r < ruleRate / 2 || selfPlanted === 0)) {
      // The first eligible referral always is one, so every run has some.
      kind = 'self';
      redeemerEmail = referrerEmail;
      selfPlanted++;
    } else if (ruleRate > 0 && (r < ruleRate || pairsPlanted === 0) && pairable.length > 0) {
      kind = 'repeat-redeemer';
      pairsPlanted++;
      const first = pairable.splice(Math.floor(rng() * pairable.length), 1)[0];
      redeemerEmail = first.redeemerEmail;
      group = { rule: 'one-per-redeemer', members: [first], rewards: 1 };
      first.group = group;
    }
    const { body } = referralBody({ uuid, referrer: referrerEmail, redeemer: redeemerEmail });
    const extra: DuplicateMode[] = [];
    if (rng() < duplicateRate) {
      // One, two or three extra copies: 2–4 deliveries in all.
      const copies = pick(rng, [1, 1, 1, 1, 1, 1, 2, 2, 2, 3]);
      for (let copy = 0; copy < copies; copy++) {
        const m = rng();
        extra.push(m < 0.4 ? 'burst' : m < 0.75 ? 'spread' : 'late');
      }
    }
    const referral: Planned = { index, uuid, body, referrerEmail, redeemerEmail, kind, group, extra };
    group?.members.push(referral);
    if (kind === 'normal') pairable.push(referral);
    planned.push(referral);
  }
  return planned;
}

/** The n-th code of the pool: 8 characters of the production alphabet, distinct for distinct n. */
export function pooledCode(n: number, seed: number): string {
  const space = CODE_ALPHABET.length ** 8;
  // An odd multiplier modulo 31^8 is a bijection: neighbours in the pool do not look alike.
  let value = (n * 2_654_435_761 + seed * 97) % space;
  let code = '';
  for (let i = 0; i < 8; i++) {
    code = CODE_ALPHABET[value % CODE_ALPHABET.length] + code;
    value = Math.floor(value / CODE_ALPHABET.length);
  }
  return code;
}
