import { PermanentError } from '../../lib/domain/errors';
import { discountCodeIssuer } from '../../lib/adapters/shopify/discount-codes';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { StaticToken } from '../../lib/adapters/shopify/auth';

type Sent = { query: string; variables: Record<string, any> };

/** A fetch that answers every request with `body` (HTTP 200) and remembers what was sent. */
function fakeFetch(body: unknown) {
  const sent: Sent[] = [];
  const fetchImpl = (async (_url: string, init: RequestInit) => {
    sent.push(JSON.parse(String(init.body)));
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as unknown as typeof fetch;
  return { sent, fetchImpl };
}

const NOW = Date.parse('2026-11-25T00:00:00.000Z');

const client = (fetchImpl: typeof fetch) =>
  discountCodeIssuer(
    new ShopifyTransport({
      baseUrl: 'https://shop.example',
      auth: new StaticToken('shpat_test'),
      apiVersion: '2026-07',
      fetch: fetchImpl,
      pacer: false,
    }),
    () => NOW,
  );

const INPUT = { code: 'ABCD2345EF', amount: '25.00', note: 'referral reward' };

describe('discountCodeIssuer', () => {
  it('creates a single-use, once-per-customer, fixed-amount code for the whole order, inputs as variables', async () => {
    // Prepare
    const { sent, fetchImpl } = fakeFetch({
      data: { discountCodeBasicCreate: { codeDiscountNode: { id: 'gid://shopify/DiscountCodeNode/1' }, userErrors: [] } },
    });

    // Act
    const result = await client(fetchImpl).createGiftCard(INPUT);

    // Assess
    expect(result).toEqual({ status: 'created', id: 'gid://shopify/DiscountCodeNode/1', lastCharacters: '45EF' });
    expect(sent[0].query).not.toContain(INPUT.code);
    expect(sent[0].variables.basicCodeDiscount).toMatchObject({
      code: INPUT.code,
      title: 'referral reward',
      startsAt: '2026-11-25T00:00:00.000Z',
      context: { all: 'ALL' },
      customerGets: { value: { discountAmount: { amount: '25.00', appliesOnEachItem: false } }, items: { all: true } },
      usageLimit: 1,
      appliesOncePerCustomer: true,
    });
  });

  it('answers taken when the code already exists', async () => {
    // Prepare
    const { fetchImpl } = fakeFetch({
      data: {
        discountCodeBasicCreate: {
          codeDiscountNode: null,
          userErrors: [{ code: 'TAKEN', field: ['basicCodeDiscount', 'code'], message: 'Code must be unique.' }],
        },
      },
    });

    // Act
    const result = await client(fetchImpl).createGiftCard(INPUT);

    // Assess
    expect(result).toEqual({ status: 'taken', sends: 1 });
  });

  it('refuses a rejected input permanently, without the code in the message', async () => {
    // Prepare
    const { fetchImpl } = fakeFetch({
      data: {
        discountCodeBasicCreate: {
          codeDiscountNode: null,
          userErrors: [{ code: 'BLANK', field: ['basicCodeDiscount', 'title'], message: `Title can't be blank (${INPUT.code})` }],
        },
      },
    });

    // Act
    const error = await client(fetchImpl)
      .createGiftCard(INPUT)
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('shopify_blank');
    expect((error as Error).message).not.toContain(INPUT.code);
  });

  it('ends the code at the end of the expiry day a gift card would have', async () => {
    // Prepare
    const { sent, fetchImpl } = fakeFetch({
      data: { discountCodeBasicCreate: { codeDiscountNode: { id: 'gid://shopify/DiscountCodeNode/1' }, userErrors: [] } },
    });

    // Act
    await client(fetchImpl).createGiftCard({ ...INPUT, expiresOn: '2027-01-31' });

    // Assess
    expect(sent[0].variables.basicCodeDiscount.endsAt).toBe('2027-01-31T23:59:59Z');
  });

  it('finds a code with its title as the note, and nothing for an unknown one', async () => {
    // Prepare
    const found = fakeFetch({
      data: { codeDiscountNodeByCode: { id: 'gid://shopify/DiscountCodeNode/7', codeDiscount: { title: 'ours' } } },
    });
    const missing = fakeFetch({ data: { codeDiscountNodeByCode: null } });

    // Act
    const hit = await client(found.fetchImpl).findGiftCardByCode('ABCD2345EF');
    const miss = await client(missing.fetchImpl).findGiftCardByCode('ZZZZ2345EF');

    // Assess
    expect(hit).toEqual({ matches: [{ id: 'gid://shopify/DiscountCodeNode/7', note: 'ours' }], complete: true });
    expect(found.sent[0].variables).toEqual({ code: 'ABCD2345EF' });
    expect(miss).toEqual({ matches: [], complete: true });
  });
});
