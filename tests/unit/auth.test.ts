import { isAuthorisedBearer } from '../../lib/inbound/auth';

const SECRET = 's3cr3t-Token_0123456789';

describe('isAuthorisedBearer', () => {
  it('accepts the secret as a bearer token', () => {
    // Act
    const authorised = isAuthorisedBearer(`Bearer ${SECRET}`, SECRET);

    // Assess
    expect(authorised).toBe(true);
  });

  it.each(['bearer', 'BEARER', 'bEaReR'])('accepts the scheme written %s', (scheme) => {
    // Act
    const authorised = isAuthorisedBearer(`${scheme} ${SECRET}`, SECRET);

    // Assess
    expect(authorised).toBe(true);
  });

  it('accepts surrounding whitespace and several spaces after the scheme', () => {
    // Act
    const authorised = isAuthorisedBearer(`  Bearer   ${SECRET}  `, SECRET);

    // Assess
    expect(authorised).toBe(true);
  });

  it('refuses a missing header', () => {
    // Act
    const authorised = isAuthorisedBearer(undefined, SECRET);

    // Assess
    expect(authorised).toBe(false);
  });

  it('refuses an empty header', () => {
    // Act
    const authorised = isAuthorisedBearer('', SECRET);

    // Assess
    expect(authorised).toBe(false);
  });

  it('refuses the scheme with no token', () => {
    // Act
    const authorised = isAuthorisedBearer('Bearer ', SECRET);

    // Assess
    expect(authorised).toBe(false);
  });

  it('refuses the secret without the Bearer scheme', () => {
    // Act
    const authorised = isAuthorisedBearer(SECRET, SECRET);

    // Assess
    expect(authorised).toBe(false);
  });

  it('refuses the secret under another scheme', () => {
    // Act
    const authorised = isAuthorisedBearer(`Basic ${SECRET}`, SECRET);

    // Assess
    expect(authorised).toBe(false);
  });

  it('refuses a wrong token of the same length', () => {
    // Prepare
    const wrong = `${SECRET.slice(0, -1)}X`;

    // Act
    const authorised = isAuthorisedBearer(`Bearer ${wrong}`, SECRET);

    // Assess
    expect(wrong).toHaveLength(SECRET.length);
    expect(authorised).toBe(false);
  });

  it.each([
    ['shorter', SECRET.slice(0, -1)],
    ['longer', `${SECRET}x`],
    ['much shorter', 'x'],
  ])('refuses a %s token without throwing', (_label, token) => {
    // Act
    const authorised = isAuthorisedBearer(`Bearer ${token}`, SECRET);

    // Assess
    expect(authorised).toBe(false);
  });

  it('compares the token case-sensitively', () => {
    // Act
    const authorised = isAuthorisedBearer(`Bearer ${SECRET.toUpperCase()}`, SECRET);

    // Assess
    expect(authorised).toBe(false);
  });

  it('refuses everything when the configured secret is empty, even an empty token', () => {
    // Act
    const results = [
      isAuthorisedBearer(undefined, ''),
      isAuthorisedBearer('', ''),
      isAuthorisedBearer('Bearer ', ''),
      isAuthorisedBearer('Bearer x', ''),
    ];

    // Assess
    expect(results).toEqual([false, false, false, false]);
  });
});
