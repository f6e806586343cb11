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
});
