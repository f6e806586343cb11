import { CODE_ALPHABET, generateCode } from '../../lib/domain/codes';

describe('generateCode', () => {
  it('produces a code of the requested length from the unambiguous alphabet', () => {
    // Act
    const codes = Array.from({ length: 200 }, () => generateCode(12));

    // Assess
    for (const code of codes) {
      expect(code).toHaveLength(12);
      expect(code).toMatch(new RegExp(`^[${CODE_ALPHABET}]+$`));
    }
  });

  it('never uses look-alike characters', () => {
    // Act
    const all = Array.from({ length: 500 }, () => generateCode(20)).join('');

    // Assess
    expect(all).not.toMatch(/[0O1IL]/);
  });

  it.each([7, 21, 8.5])('refuses length %p outside 8–20', (length) => {
    // Act / Assess
    expect(() => generateCode(length)).toThrow(RangeError);
  });

  it('discards biased bytes instead of folding them onto the alphabet', () => {
    // Prepare: 248 is the first byte at or above the largest multiple of 31 (248), so it must be skipped
    const bytes = [248, 255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    const random = (size: number): Uint8Array => Uint8Array.from(bytes.splice(0, size));

    // Act
    const code = generateCode(8, random);

    // Assess
    expect(code).toBe(CODE_ALPHABET.slice(0, 8));
  });

  it('does not repeat codes across many draws', () => {
    // Act
    const codes = new Set(Array.from({ length: 10_000 }, () => generateCode(8)));

    // Assess: 31^8 ≈ 8.5e11 codes; a collision in 10k draws would point at a broken generator
    expect(codes.size).toBe(10_000);
  });
});
