import { MIN_SIGNING_KEY_BYTES, referralSigningMessage, signReferral, verifyReferral, type VouchedReferral } from '../../lib/domain/vouch';

/** The fixed test vector the setup guide's signing snippet uses too: the app and the worker must agree on it byte for byte. */
const KEY = 'test-referral-signing-key-0123456789abcdef';
const BY_EMAIL: VouchedReferral = { eventName: 'referral redeemed', referrerEmail: 'alice@example.com', redeemerEmail: 'bob@example.com' };
const BY_EMAIL_SIGNATURE = '6zWd_ENcNzHUeWeOrP4HSepSE7f9ms1BbDLmEliUh_Y';
const BY_CODE: VouchedReferral = { ...BY_EMAIL, referralCode: 'K7M2Q9XP ' };
const BY_CODE_SIGNATURE = 'EveHz2HVuwzqAAY0hlQH-q_NLAnO-Qx1J4hlRI1vEw0';

describe('referral signatures: the fixed test vector', () => {
  it('signs v1, the event name, the referrer email and the redeemer email, one per line', () => {
    // Act
    const message = referralSigningMessage(BY_EMAIL);
    const signature = signReferral(KEY, BY_EMAIL);

    // Assess
    expect(message).toBe('v1\nreferral redeemed\nalice@example.com\nbob@example.com');
    expect(signature).toBe(BY_EMAIL_SIGNATURE);
  });

  it('signs the referral code, trimmed and lowercased, instead of the referrer email when the event names one', () => {
    // Act
    const message = referralSigningMessage(BY_CODE);
    const signature = signReferral(KEY, BY_CODE);

    // Assess
    expect(message).toBe('v1\nreferral redeemed\nk7m2q9xp\nbob@example.com');
    expect(signature).toBe(BY_CODE_SIGNATURE);
  });

  it('uses a key long enough for the 32-byte minimum', () => {
    // Assess
    expect(Buffer.byteLength(KEY)).toBeGreaterThanOrEqual(MIN_SIGNING_KEY_BYTES);
  });
});

describe('referralSigningMessage', () => {
  it('trims and lowercases every field, so the app need not normalise as ingest does', () => {
    // Act
    const message = referralSigningMessage({
      eventName: ' Referral Redeemed ',
      referrerEmail: ' Alice@Example.COM',
      redeemerEmail: 'BOB@example.com\t',
    });

    // Assess
    expect(message).toBe('v1\nreferral redeemed\nalice@example.com\nbob@example.com');
  });

  it('signs the referrer email when the code is blank', () => {
    // Act
    const message = referralSigningMessage({ ...BY_EMAIL, referralCode: '   ' });

    // Assess
    expect(message).toBe(referralSigningMessage(BY_EMAIL));
  });
});

describe('verifyReferral', () => {
  it('vouches for the referral its signature was made for', () => {
    // Act
    const verdict = verifyReferral(KEY, BY_CODE, BY_CODE_SIGNATURE);

    // Assess
    expect(verdict).toBe('vouched');
  });

  it.each([undefined, ''])('calls a referral with no signature (%p) unsigned', (signature) => {
    // Act
    const verdict = verifyReferral(KEY, BY_EMAIL, signature);

    // Assess
    expect(verdict).toBe('unsigned');
  });

  it.each([
    ['another redeemer', { ...BY_EMAIL, redeemerEmail: 'mallory@example.com' }, BY_EMAIL_SIGNATURE],
    ['another referrer', { ...BY_EMAIL, referrerEmail: 'mallory@example.com' }, BY_EMAIL_SIGNATURE],
    ['a code where the email was signed', { ...BY_EMAIL, referralCode: 'K7M2Q9XP' }, BY_EMAIL_SIGNATURE],
    ['another event name', { ...BY_EMAIL, eventName: 'signed up' }, BY_EMAIL_SIGNATURE],
    ['another key', BY_EMAIL, signReferral('another-key-of-at-least-thirty-two-bytes!', BY_EMAIL)],
    ['a padded signature', BY_EMAIL, `${BY_EMAIL_SIGNATURE}=`],
    ['standard base64 instead of base64url', BY_EMAIL, Buffer.from(BY_EMAIL_SIGNATURE, 'base64url').toString('base64').replace(/=+$/, '')],
    ['a truncated signature', BY_EMAIL, BY_EMAIL_SIGNATURE.slice(0, -1)],
    ['a hex digest', BY_EMAIL, Buffer.from(BY_EMAIL_SIGNATURE, 'base64url').toString('hex')],
  ])('refuses a signature for %s as a bad signature', (_label, referral, signature) => {
    // Act
    const verdict = verifyReferral(KEY, referral, signature);

    // Assess
    expect(verdict).toBe('bad_signature');
  });

  describe('during a rotation (REFERRAL_SIGNING_KEY_PREVIOUS)', () => {
    const NEW_KEY = 'the-new-referral-signing-key-0123456789abcdef';

    it('vouches for a referral signed with the previous key, still in flight', () => {
      // Act
      const verdict = verifyReferral(NEW_KEY, BY_EMAIL, BY_EMAIL_SIGNATURE, KEY);

      // Assess
      expect(verdict).toBe('vouched');
    });

    it('vouches for a referral signed with the new key', () => {
      // Act
      const verdict = verifyReferral(NEW_KEY, BY_EMAIL, signReferral(NEW_KEY, BY_EMAIL), KEY);

      // Assess
      expect(verdict).toBe('vouched');
    });

    it('refuses a signature made under neither key', () => {
      // Act
      const verdict = verifyReferral(NEW_KEY, BY_EMAIL, signReferral('a-third-key-of-at-least-thirty-two-bytes', BY_EMAIL), KEY);

      // Assess
      expect(verdict).toBe('bad_signature');
    });

    it("refuses the previous key's signature once the previous key is gone", () => {
      // Act
      const verdict = verifyReferral(NEW_KEY, BY_EMAIL, BY_EMAIL_SIGNATURE);

      // Assess
      expect(verdict).toBe('bad_signature');
    });
  });
});
