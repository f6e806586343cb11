import { redactText } from '../../lib/infra/mask';

describe('redactText', () => {
  it('masks a gift-card code whatever its case, leaving its last four characters', () => {
    // Act
    const text = redactText('code abcd2345wxyz is taken (ABCD2345WXYZ)', ['ABCD2345WXYZ']);

    // Assess
    expect(text).toBe('code …WXYZ is taken (…WXYZ)');
  });

  it('replaces a secret whole and masks any email address', () => {
    // Act
    const text = redactText('token shpat_abc123 rejected for jane.doe@example.com', [], ['shpat_abc123']);

    // Assess
    expect(text).toBe('token [redacted] rejected for j***@example.com');
  });

  it('masks the longer of two overlapping values whole', () => {
    // Act
    const text = redactText('identifier grace@example.org', ['grace', 'grace@example.org']);

    // Assess
    expect(text).toBe('identifier g***@example.org');
  });

  it.each([
    ['percent-encoded', 'POST /api/v1/customers/jane.doe%40example.com/events: not found', 'j***@example.com/events'],
    ['percent-encoded twice', 'upstream said: jane.doe%2540example.com', 'j***@example.com'],
    ['JSON-escaped', '{"error":"unknown person jane.doe\\u0040example.com"}', 'j***@example.com'],
    ['an HTML entity', '<p>jane.doe&#64;example.com</p>', 'j***@example.com'],
    ['full-width', 'jane.doe\uFF20example.com', 'j***@example.com'],
  ])('masks an unknown email whose "@" is %s', (_how, input, masked) => {
    // Act
    const text = redactText(input);

    // Assess
    expect(text).toContain(masked);
    expect(text).not.toMatch(/jane|doe/);
  });

  it.each([
    ['percent-encoded, + as %2B', 'no person me%2B2%40outlook.com'],
    ['with its + read as a space', 'no person me 2@outlook.com'],
  ])('masks our own email whole when it comes back %s', (_how, input) => {
    // Act
    const text = redactText(input, ['me+2@outlook.com']);

    // Assess
    expect(text).toBe('no person m***@outlook.com');
  });

  it.each([
    [
      'a Basic credential',
      'upstream refused Authorization: Basic c2l0ZS0xOnNlY3JldC1hcGkta2V5LTEyMw== for this',
      'Basic [redacted] for this',
    ],
    ['a Bearer token', 'echo: authorization=Bearer shpat_0a1b2c3d4e5f6a7b8c9d, try again', 'Bearer [redacted], try again'],
    ['a lower-case bearer token', 'header bearer phx_AbCdEf0123456789xyz rejected', 'bearer [redacted] rejected'],
  ])('redacts %s whatever secret it carries', (_what, input, redacted) => {
    // Act
    const text = redactText(input);

    // Assess
    expect(text).toContain(redacted);
    expect(text).not.toMatch(/c2l0ZS0x|shpat_0a1b|phx_AbCd/);
  });

  it('leaves prose about bearer tokens readable', () => {
    // Act
    const text = redactText('missing or wrong Authorization: Bearer token; Basic authentication failed');

    // Assess
    expect(text).toBe('missing or wrong Authorization: Bearer token; Basic authentication failed');
  });
});

describe('redactText: linear in its input', () => {
  // Each shape made the old pattern retry from every character of a run and rescan the rest of it:
  // 160 KB took 22 s, so 1 MB takes about 15 minutes. Linear, each takes milliseconds (about 150
  // at worst here). The call is synchronous, so jest's own timeout cannot stop it: the elapsed time
  // is checked instead, against a bound a thousand times what linear needs and a hundred times
  // less than quadratic.
  const MB = 1 << 20;
  it.each([
    ['letters with no "@"', () => 'a'.repeat(MB)],
    ['backslashes', () => '\\'.repeat(MB)],
    ['a percent-encoding run', () => `a${'%25'.repeat(MB / 3)}`],
    ['emails with no separator', () => 'jane.doe@example.com'.repeat(MB / 20)],
  ])('redacts 1 MB of %s', (_shape, make) => {
    // Prepare
    const input = make();

    // Act
    const started = performance.now();
    const text = redactText(input, ['jane.doe@example.com', 'ABCD2345WXYZ'], ['secret-key']);
    const elapsedMs = performance.now() - started;

    // Assess
    expect(elapsedMs).toBeLessThan(10_000);
    expect(text).not.toContain('jane.doe@');
  });
});
