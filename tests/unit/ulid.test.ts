import { isUlid, ulidFromUuid } from '../../lib/infra/ulid';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
// A PostHog-style UUIDv7: its first 48 bits are 0x0190a5c48f1e unix ms.
const UUID_V7 = '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d';
const UUID_V4 = '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d';

/** The ULID's first 10 characters decoded back into unix ms. */
function ulidTime(ulid: string): number {
  return [...ulid.slice(0, 10)].reduce((acc, ch) => acc * 32 + CROCKFORD.indexOf(ch), 0);
}

describe('ulidFromUuid', () => {
  it('gives the same id for the same uuid, so a redrive repeats the id', () => {
    // Prepare
    const uuid = UUID_V7;

    // Act
    const first = ulidFromUuid(uuid);
    const second = ulidFromUuid(uuid);

    // Assess
    expect(second).toBe(first);
  });

  it('ignores the case of the uuid', () => {
    // Prepare
    const upper = UUID_V7.toUpperCase();

    // Act
    const id = ulidFromUuid(upper);

    // Assess
    expect(id).toBe(ulidFromUuid(UUID_V7));
  });

  it('gives different ids for different uuids', () => {
    // Prepare
    const other = '0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6e';

    // Act
    const a = ulidFromUuid(UUID_V7);
    const b = ulidFromUuid(other);

    // Assess
    expect(a).not.toBe(b);
  });

  it('gives different ids for different salts', () => {
    // Prepare
    const uuid = UUID_V4;

    // Act
    const customerio = ulidFromUuid(uuid);
    const posthog = ulidFromUuid(uuid, 'posthog');

    // Assess
    expect(posthog).not.toBe(customerio);
  });

  it("takes a UUIDv7's time part from the uuid's own timestamp", () => {
    // Prepare
    const expectedMs = 0x0190a5c48f1e;

    // Act
    const id = ulidFromUuid(UUID_V7);

    // Assess
    expect(ulidTime(id)).toBe(expectedMs);
  });

  it('produces 26 Crockford base32 characters for v7 and non-v7 uuids', () => {
    // Prepare
    const uuids = [UUID_V7, UUID_V4, 'not-a-uuid'];

    // Act
    const ids = uuids.map((u) => ulidFromUuid(u));

    // Assess
    for (const id of ids) expect(id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
  });
});

describe('isUlid', () => {
  it('accepts a derived id', () => {
    // Prepare
    const id = ulidFromUuid(UUID_V4);

    // Act
    const valid = isUlid(id);

    // Assess
    expect(valid).toBe(true);
  });

  it.each([
    ['too short', '01ARZ3NDEKTSV4RRFFQ69G5FA'],
    ['too long', '01ARZ3NDEKTSV4RRFFQ69G5FAVV'],
    ['letter outside Crockford (U)', '01ARZ3NDEKTSV4RRFFQ69G5FAU'],
    ['overflowing first character', '81ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['a uuid', UUID_V4],
  ])('refuses %s', (_label, candidate) => {
    // Act
    const valid = isUlid(candidate);

    // Assess
    expect(valid).toBe(false);
  });
});
