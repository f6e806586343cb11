/**
 * The count of the main soak, once the faults are off and the queue drained: per referral, what
 * the fakes show it got (cards by note and code, its Customer.io event by id, its PostHog capture)
 * against what the ledger says and what the plan allows.
 */
import type { LedgerRecord } from '../lib/adapters/dynamodb/ledger';
import { giftCardNote, parseGiftCardNote } from '../lib/domain/rewards';
import { ulidFromUuid } from '../lib/infra/ulid';
import type { FakeTrackedEvent } from '../local/sandbox/customerio';
import type { FakeCapturedEvent } from '../local/sandbox/posthog';
import type { FakeGiftCard } from '../local/sandbox/shopify';
import { groupBy, tally } from './harness';
import type { Planned, RuleGroup } from './plan';

export type Verdict = ReturnType<typeof count>;

export interface CountInput {
  planned: Planned[];
  /** The distinct rule groups of `planned`. */
  groups: ReadonlySet<RuleGroup>;
  records: (LedgerRecord | undefined)[];
  invalid: { uuid: string }[];
  invalidRecords: (LedgerRecord | undefined)[];
  cards: FakeGiftCard[];
  events: FakeTrackedEvent[];
  captures: FakeCapturedEvent[];
  problem: (eventId: string, text: string) => void;
}

/** Per referral: its cards (by note and code), its Customer.io event (by id), its ledger record, its PostHog capture. */
export function count({ planned, groups, records, invalid, invalidRecords, cards, events, captures, problem }: CountInput) {
  const known = new Set(planned.map((referral) => referral.uuid));
  const cardsByEvent = groupBy(cards, (card) => parseGiftCardNote(card.note)?.eventId ?? '');
  const cardsByCode = groupBy(cards, (card) => card.code);
  const eventIdByUlid = new Map(planned.map((referral) => [ulidFromUuid(referral.uuid), referral.uuid]));
  const eventsByEvent = groupBy(events, (event) => eventIdByUlid.get(event.id.toUpperCase()) ?? '');
  const eventsByCodes = groupBy(events, (event) => `${event.data.discountreferrer}/${event.data.discountreferee}`.toUpperCase());
  const capturesByEvent = groupBy(captures, (capture) => String(capture.properties.referral_event_id ?? ''));

  let stray = 0;
  for (const card of cards) {
    const eventId = parseGiftCardNote(card.note)?.eventId;
    if (!eventId || !known.has(eventId)) {
      stray++;
      problem(eventId ?? '-', `card ${card.id} (…${card.code.slice(-4)}) belongs to no referral: note ${JSON.stringify(card.note)}`);
    }
  }
  for (const event of eventsByEvent.get('') ?? []) {
    stray++;
    problem('-', `Customer.io event ${event.id} belongs to no referral`);
  }
  for (const [index, bad] of invalid.entries()) {
    if (invalidRecords[index] || cardsByEvent.has(bad.uuid) || eventsByEvent.has(bad.uuid)) {
      stray++;
      problem(bad.uuid, 'an invalid webhook reached the ledger or the fakes');
    }
  }

  let lost = 0;
  let doubled = stray;
  let refusedButPaid = 0;
  let codeMismatches = 0;
  let captureMismatches = 0;
  const statuses = {
    completed: 0,
    rejected: 0,
    failed: 0,
    unaccounted: 0,
    rejectionReasons: {} as Record<string, number>,
    failureReasons: {} as Record<string, number>,
  };
  const rewardedIds = new Set<string>();
  planned.forEach((referral, index) => {
    const { uuid } = referral;
    const record = records[index];
    if (record?.status === 'COMPLETED') statuses.completed++;
    else if (record?.status === 'REJECTED' && record.rejectionReason) {
      statuses.rejected++;
      tally(statuses.rejectionReasons, record.rejectionReason);
    } else if (record?.status === 'FAILED' && record.failureReason) {
      statuses.failed++;
      tally(statuses.failureReasons, record.failureReason);
      problem(uuid, `FAILED (${record.failureReason}) after the redrive with faults off`);
    } else {
      statuses.unaccounted++;
      problem(uuid, `unaccounted for: ledger ${record ? `${record.status} without a reason` : 'has no record'}`);
    }

    const mine = cardsByEvent.get(uuid) ?? [];
    const referrerCards = mine.filter((card) => card.note === giftCardNote(uuid, 'referrer'));
    const redeemerCards = mine.filter((card) => card.note === giftCardNote(uuid, 'redeemer'));
    const sent = eventsByEvent.get(uuid) ?? [];
    const got = `${referrerCards.length} referrer card(s), ${redeemerCards.length} redeemer card(s), ${sent.length} event(s)`;
    const nothing = mine.length === 0 && sent.length === 0;
    const once = referrerCards.length === 1 && redeemerCards.length === 1 && sent.length === 1;

    if (referrerCards.length > 1 || redeemerCards.length > 1 || sent.length > 1) {
      doubled++;
      problem(uuid, `doubled: ${got}`);
    } else if (!once && !nothing) {
      lost++;
      problem(uuid, `half rewarded: ${got}`);
    }
    if (once) rewardedIds.add(uuid);

    if (referral.kind === 'self' && !nothing) {
      refusedButPaid++;
      problem(uuid, `a self-referral was paid: ${got}`);
    }
    if (referral.kind === 'normal' && !referral.group && nothing) {
      lost++;
      problem(uuid, `lost: no reward (ledger ${record?.status ?? 'none'} ${record?.rejectionReason ?? record?.failureReason ?? ''})`);
    }
    // The ledger must say what the fakes show.
    if (once && record?.status !== 'COMPLETED') problem(uuid, `rewarded but the ledger says ${record?.status}`);
    if (nothing && record?.status === 'COMPLETED') {
      lost++;
      problem(uuid, 'COMPLETED in the ledger but nothing on the fakes');
    }

    if (once) {
      const event = sent[0];
      const mailed = {
        referrer: String(event.data.discountreferrer ?? '').toUpperCase(),
        redeemer: String(event.data.discountreferee ?? '').toUpperCase(),
      };
      const carded = { referrer: referrerCards[0].code, redeemer: redeemerCards[0].code };
      const ledgered = { referrer: record?.referrerCode?.toUpperCase(), redeemer: record?.redeemerCode?.toUpperCase() };
      const agree =
        mailed.referrer === carded.referrer &&
        mailed.redeemer === carded.redeemer &&
        ledgered.referrer === carded.referrer &&
        ledgered.redeemer === carded.redeemer &&
        record?.referrerCardId === referrerCards[0].id &&
        record?.redeemerCardId === redeemerCards[0].id &&
        event.identifier === referral.redeemerEmail &&
        event.data.referreremail === referral.referrerEmail &&
        [carded.referrer, carded.redeemer].every((code) => cardsByCode.get(code)?.length === 1) &&
        // By content too: no second event, under another id, carrying these codes.
        eventsByCodes.get(`${carded.referrer}/${carded.redeemer}`)?.length === 1;
      if (!agree) {
        codeMismatches++;
        problem(
          uuid,
          `mismatch: mailed …${mailed.referrer.slice(-4)}/…${mailed.redeemer.slice(-4)}, cards …${carded.referrer.slice(-4)}/…${carded.redeemer.slice(-4)}, ` +
            `ledger …${ledgered.referrer?.slice(-4)}/…${ledgered.redeemer?.slice(-4)} (${record?.referrerCardId}/${record?.redeemerCardId} vs ${referrerCards[0].id}/${redeemerCards[0].id})`,
        );
      }
    }

    // One outcome captured per finished referral (repeats of the same uuid are PostHog's to drop).
    const expected =
      record?.status === 'COMPLETED' ? 'referral reward fulfilled' : record?.status === 'REJECTED' ? 'referral reward rejected' : undefined;
    if (expected) {
      const mineCaptured = capturesByEvent.get(uuid) ?? [];
      const uuids = new Set(mineCaptured.map((capture) => capture.uuid));
      if (uuids.size !== 1 || mineCaptured.some((capture) => capture.event !== expected)) {
        captureMismatches++;
        problem(
          uuid,
          `PostHog: ${mineCaptured.length} capture(s) with ${uuids.size} uuid(s) (${[...new Set(mineCaptured.map((c) => c.event))].join(', ')}), expected one "${expected}"`,
        );
      }
    }
  });

  // The rules' budgets: exactly one reward per redeemer, exactly REFERRER_CAP per referrer.
  for (const group of groups) {
    const paid = group.members.filter((member) => rewardedIds.has(member.uuid)).length;
    const who = `${group.rule} group ${group.members.map((member) => member.uuid.slice(0, 8)).join(',')}`;
    if (paid < group.rewards) {
      lost += group.rewards - paid;
      problem(group.members[0].uuid, `${who}: ${paid} rewarded, expected ${group.rewards}`);
    } else if (paid > group.rewards) {
      doubled += paid - group.rewards;
      problem(group.members[0].uuid, `${who}: ${paid} rewarded, only ${group.rewards} allowed`);
    }
  }
  return { statuses, rewarded: rewardedIds.size, lost, doubled, refusedButPaid, codeMismatches, stray, captureMismatches };
}
