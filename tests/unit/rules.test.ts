import { canonicalEmail } from '../../lib/domain/identity';
import { staticRefusal, type ProgramRules } from '../../lib/domain/rules';
import { signReferral } from '../../lib/domain/vouch';
import { SAMPLE_REFERRAL } from '../support/fixtures';
import { TEST_REFERRAL_SIGNING_KEY } from '../support/referral-signing';

const REFERRAL = SAMPLE_REFERRAL;
const RULES: ProgramRules = { maxRewardsPerReferrer: 10, blockedDomains: [], referralSignatures: { mode: 'off' } };

describe('canonicalEmail', () => {
  it.each([
    ['me+2@outlook.com', 'me@outlook.com'],
    ['Me+promo@Example.COM', 'me@example.com'],
    ['jane.doe+x@googlemail.com', 'janedoe@gmail.com'],
  ])('folds the +tag of %s on every domain', (email, canonical) => {
    // Act
    const folded = canonicalEmail(email);

    // Assess
    expect(folded).toBe(canonical);
  });

  it('keeps dots outside Gmail, where they may tell two people apart', () => {
    // Act
    const folded = canonicalEmail('j.doe@outlook.com');

    // Assess
    expect(folded).toBe('j.doe@outlook.com');
  });
});

describe('staticRefusal', () => {
  it('refuses as a self-referral a redeemer who is the referrer with a +tag, on any domain', () => {
    // Prepare
    const referral = { ...REFERRAL, referrerEmail: 'me@outlook.com', redeemerEmail: 'me+2@outlook.com', customerEmail: 'me+2@outlook.com' };

    // Act
    const refusal = staticRefusal(referral, RULES);

    // Assess
    expect(refusal).toBe('self_referral');
  });

  it('refuses as a self-referral a PostHog person who is the referrer, whatever redeemer email they invented', () => {
    // Prepare
    const referral = { ...REFERRAL, personEmail: 'Ada+again@example.com' };

    // Act
    const refusal = staticRefusal(referral, RULES);

    // Assess
    expect(refusal).toBe('self_referral');
  });

  it('accepts a PostHog person who is someone else: the codes go to the redeemer, whom the rules judged', () => {
    // Prepare
    const referral = { ...REFERRAL, personEmail: 'someone.else@example.net' };

    // Act
    const refusal = staticRefusal(referral, RULES);

    // Assess
    expect(refusal).toBeUndefined();
  });

  it.each([
    ['gmail.com', 'grace@googlemail.com'],
    ['googlemail.com', 'grace@gmail.com'],
    ['example.org', 'grace@mail.example.org'],
  ])('with %s blocked, refuses %s', (blocked, redeemerEmail) => {
    // Prepare
    const referral = { ...REFERRAL, redeemerEmail, customerEmail: redeemerEmail };

    // Act
    const refusal = staticRefusal(referral, { ...RULES, blockedDomains: [blocked] });

    // Assess
    expect(refusal).toBe('blocked_domain');
  });

  it('does not block a domain that merely ends with the blocked name', () => {
    // Prepare
    const referral = { ...REFERRAL, redeemerEmail: 'grace@notexample.org', customerEmail: 'grace@notexample.org' };

    // Act
    const refusal = staticRefusal(referral, { ...RULES, blockedDomains: ['example.org'] });

    // Assess
    expect(refusal).toBeUndefined();
  });
});

describe('staticRefusal: only referrals the app vouched for', () => {
  const REQUIRED: ProgramRules = { ...RULES, referralSignatures: { mode: 'required', key: TEST_REFERRAL_SIGNING_KEY } };
  const signed = { ...REFERRAL, referralSignature: signReferral(TEST_REFERRAL_SIGNING_KEY, REFERRAL) };

  it('accepts a referral signed with the key', () => {
    // Act
    const refusal = staticRefusal(signed, REQUIRED);

    // Assess
    expect(refusal).toBeUndefined();
  });

  it('accepts a referral signed with REFERRAL_SIGNING_KEY_PREVIOUS while it is set (a rotation)', () => {
    // Prepare: the key rotated after the app signed this referral
    const rotating: ProgramRules = {
      ...RULES,
      referralSignatures: {
        mode: 'required',
        key: 'the-new-referral-signing-key-0123456789abcdef',
        previousKey: TEST_REFERRAL_SIGNING_KEY,
      },
    };

    // Act
    const refusal = staticRefusal(signed, rotating);

    // Assess
    expect(refusal).toBeUndefined();
  });

  it('refuses a referral without a signature as unsigned_referral', () => {
    // Act
    const refusal = staticRefusal(REFERRAL, REQUIRED);

    // Assess
    expect(refusal).toBe('unsigned_referral');
  });

  it('refuses a signature made for other people as bad_referral_signature', () => {
    // Prepare: the signature of a genuine referral, on a forged event naming another redeemer
    const forged = { ...signed, redeemerEmail: 'mallory@example.net', customerEmail: 'mallory@example.net' };

    // Act
    const refusal = staticRefusal(forged, REQUIRED);

    // Assess
    expect(refusal).toBe('bad_referral_signature');
  });

  it('judges the signature before any other rule: an unsigned self-referral is unsigned_referral', () => {
    // Prepare
    const referral = { ...REFERRAL, redeemerEmail: REFERRAL.referrerEmail, customerEmail: REFERRAL.referrerEmail };

    // Act
    const refusal = staticRefusal(referral, REQUIRED);

    // Assess
    expect(refusal).toBe('unsigned_referral');
  });

  it('with REFERRAL_SIGNATURES=off, accepts an unsigned referral as before signatures existed', () => {
    // Act
    const refusal = staticRefusal(REFERRAL, { ...RULES, referralSignatures: { mode: 'off' } });

    // Assess
    expect(refusal).toBeUndefined();
  });
});
