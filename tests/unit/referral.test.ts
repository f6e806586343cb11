import { parseReferral, type Referral } from '../../lib/domain/referral';
import { SAMPLE_REFERRAL } from '../support/fixtures';

const REFERRAL: Referral = SAMPLE_REFERRAL;

describe('parseReferral', () => {
  it('reads back the message ingest queues', () => {
    // Act
    const referral = parseReferral(JSON.stringify(REFERRAL));

    // Assess
    expect(referral).toEqual(REFERRAL);
  });

  it('reads a referral without the optional distinct id and timestamp', () => {
    // Prepare
    const { distinctId: _d, occurredAt: _o, ...minimal } = REFERRAL;

    // Act
    const referral = parseReferral(JSON.stringify(minimal));

    // Assess
    expect(referral).toEqual(minimal);
    expect(Object.keys(referral ?? {})).not.toContain('distinctId');
  });

  it('drops keys it does not know, so a hand-edited redrive cannot smuggle fields into the ledger', () => {
    // Act
    const referral = parseReferral(JSON.stringify({ ...REFERRAL, rewardAmount: '2000.00' }));

    // Assess
    expect(referral).toEqual(REFERRAL);
  });

  it.each([
    ['not JSON', 'nope'],
    ['JSON null', 'null'],
    ['an array', '[1]'],
    ['another version', JSON.stringify({ ...REFERRAL, v: 2 })],
    ['no version', JSON.stringify({ ...REFERRAL, v: undefined })],
    ['an event id that is not a uuid', JSON.stringify({ ...REFERRAL, eventId: 'evt-1' })],
    ['no event name', JSON.stringify({ ...REFERRAL, eventName: undefined })],
    ['a referrer email that is not one', JSON.stringify({ ...REFERRAL, referrerEmail: 'ada@' })],
    ['no redeemer email', JSON.stringify({ ...REFERRAL, redeemerEmail: undefined })],
    ['a customer email that is a number', JSON.stringify({ ...REFERRAL, customerEmail: 42 })],
    ['a null distinct id', JSON.stringify({ ...REFERRAL, distinctId: null })],
    ['a numeric timestamp', JSON.stringify({ ...REFERRAL, occurredAt: 1764064800000 })],
  ])('refuses %s', (_label, body) => {
    // Act
    const referral = parseReferral(body);

    // Assess
    expect(referral).toBeUndefined();
  });

  it('reads a person email that differs from the redeemer, in a message queued before defect 3, as the person, never as where the codes go', () => {
    // Prepare: the v1 message of the previous release, customerEmail = the PostHog person's email
    const queued = { ...REFERRAL, customerEmail: 'ada+collector@example.com' };

    // Act
    const referral = parseReferral(JSON.stringify(queued));

    // Assess
    expect(referral?.customerEmail).toBe(REFERRAL.redeemerEmail);
    expect(referral?.personEmail).toBe('ada+collector@example.com');
  });

  it('reads back the referral code and signature ingest carries', () => {
    // Prepare
    const signed = { ...REFERRAL, referralCode: 'k7m2q9xp', referralSignature: 'EveHz2HVuwzqAAY0hlQH-q_NLAnO-Qx1J4hlRI1vEw0' };

    // Act
    const referral = parseReferral(JSON.stringify(signed));

    // Assess
    expect(referral).toEqual(signed);
  });

  it.each([
    ['a numeric signature', { referralSignature: 42 }],
    ['a signature longer than ingest carries', { referralSignature: 'x'.repeat(129) }],
    ['a referral code longer than ingest carries', { referralCode: 'k'.repeat(65) }],
  ])('refuses %s', (_label, fields) => {
    // Act
    const referral = parseReferral(JSON.stringify({ ...REFERRAL, ...fields }));

    // Assess
    expect(referral).toBeUndefined();
  });

  it('reads the person email of a message queued by this release', () => {
    // Act
    const referral = parseReferral(JSON.stringify({ ...REFERRAL, personEmail: 'profile@example.net' }));

    // Assess
    expect(referral).toEqual({ ...REFERRAL, personEmail: 'profile@example.net' });
  });
});
