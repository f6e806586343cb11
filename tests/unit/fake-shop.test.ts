import { RetryableError } from '../../lib/domain/errors';
import { giftCardNote } from '../../lib/domain/rewards';
import { FakeShop } from '../support/fake-shop';
import { failure } from '../support/failure';

const EVENT_ID = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61';
const input = (code: string, role: 'referrer' | 'redeemer' = 'referrer') => ({ code, amount: '25.00', note: giftCardNote(EVENT_ID, role) });

// The unit tests' shop must behave as the contract says Shopify does, or the tests on it prove nothing.
describe('FakeShop', () => {
  it('answers taken for a code already used, whatever its case', async () => {
    // Prepare
    const shop = new FakeShop();
    await shop.createGiftCard(input('ABCD1234'));

    // Act
    const second = await shop.createGiftCard(input('abcd1234', 'redeemer'));

    // Assess
    expect(second).toEqual({ status: 'taken' });
    expect(shop.cards.size).toBe(1);
  });

  it('finds a card by code, case-insensitively, with its note', async () => {
    // Prepare
    const shop = new FakeShop();
    const created = await shop.createGiftCard(input('ABCD1234'));

    // Act
    const found = await shop.findGiftCardByCode('abcd1234');

    // Assess
    expect(created.status).toBe('created');
    expect(found).toEqual({ matches: [{ id: (created as { id: string }).id, note: giftCardNote(EVENT_ID, 'referrer') }], complete: true });
  });

  it('creates the card of a lost response, then throws a retryable error', async () => {
    // Prepare
    const shop = new FakeShop();
    shop.loseResponses();

    // Act
    const error = await failure(shop.createGiftCard(input('ABCD1234')));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(shop.card('ABCD1234')).toBeDefined();
  });

  it('throws an injected fault before anything is created, only as often as told', async () => {
    // Prepare
    const shop = new FakeShop();
    shop.fault(new RetryableError('Shopify answered 503'), 1);

    // Act
    const error = await failure(shop.createGiftCard(input('ABCD1234')));
    const retried = await shop.createGiftCard(input('ABCD1234'));

    // Assess
    expect(error.message).toBe('Shopify answered 503');
    expect(retried.status).toBe('created');
  });

  it('hides the card asked for behind a full page of strangers when the look-up is incomplete', async () => {
    // Prepare
    const shop = new FakeShop();
    await shop.createGiftCard(input('ABCD1234'));
    shop.lookupNoise = [{ id: 'gid://shopify/GiftCard/foreign', note: null }];
    shop.lookupIncomplete = true;

    // Act
    const found = await shop.findGiftCardByCode('ABCD1234');

    // Assess
    expect(found).toEqual({ matches: [{ id: 'gid://shopify/GiftCard/foreign', note: null }], complete: false });
  });
});
