import { redactText } from '../../lib/mask';

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
});
