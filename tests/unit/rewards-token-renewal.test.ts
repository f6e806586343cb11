import { RetryableError } from '../../lib/domain/errors';
import type { Referral } from '../../lib/domain/referral';
import { fulfilReferral, parseGiftCardNote, type FulfilDeps } from '../../lib/domain/rewards';
import { ClientCredentialsTokens } from '../../lib/adapters/shopify/auth';
import { giftCardIssuer } from '../../lib/adapters/shopify/gift-cards';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import type { Fetch } from '../../lib/infra/http';
import { MemoryLedger } from '../support/memory-ledger';
import { failure } from '../support/failure';

/**
 * A create the transport sent twice (a 401, a renewed token, the same create again) may have made
 * our card on its first send. If the resend answers TAKEN and the look-up shows only someone
 * else's card (ours not searchable yet), fulfilment must treat the code as possibly ours: record
 * the sighting and retry, never replace the code at once (a second card would pay twice).
 */

const ORIGIN = 'https://shop.myshopify.com';
const EVENT_ID = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61';
const NOW = Date.parse('2026-11-20T10:16:00.000Z');
const REFERRAL: Referral = {
  v: 1,
  eventId: EVENT_ID,
  eventName: 'referral redeemed',
  referrerEmail: 'referrer@example.com',
  redeemerEmail: 'redeemer@example.com',
  customerEmail: 'redeemer@example.com',
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/**
 * A shop whose first token is refused on the referrer's create after the create was applied;
 * every card is stored by code, and the search finds only a stranger's card sharing the last
 * four characters (ours is not searchable yet).
 */
function shop(): { fetch: Fetch; creates: string[] } {
  let grants = 0;
  const cards = new Map<string, string>();
  const creates: string[] = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    if (String(input).endsWith('/admin/oauth/access_token')) {
      grants++;
      return json({ access_token: `shpat_${grants}`, scope: 'write_gift_cards', expires_in: 86_399 });
    }
    const token = (init?.headers as Record<string, string>)['X-Shopify-Access-Token'];
    const { query, variables } = JSON.parse(String(init?.body)) as { query: string; variables: Record<string, any> };
    if (query.includes('giftCardCreate')) {
      const { code, note } = variables.input as { code: string; note: string };
      creates.push(code);
      if (cards.has(code)) {
        return json({
          data: { giftCardCreate: { giftCard: null, userErrors: [{ code: 'TAKEN', field: ['input', 'code'], message: 'taken' }] } },
        });
      }
      cards.set(code, note);
      if (token === 'shpat_1' && parseGiftCardNote(note)?.role === 'referrer')
        return json({ errors: '[API] Invalid API key or access token' }, 401);
      return json({
        data: {
          giftCardCreate: { giftCard: { id: `gid://shopify/GiftCard/${cards.size}`, lastCharacters: code.slice(-4) }, userErrors: [] },
        },
      });
    }
    const code = String(variables.query);
    return json({
      data: {
        giftCards: {
          nodes: [{ id: 'gid://shopify/GiftCard/stranger', note: 'bought at the till', lastCharacters: code.slice(-4), enabled: true }],
          pageInfo: { hasNextPage: false },
        },
      },
    });
  }) as Fetch;
  return { fetch: fetchImpl, creates };
}

describe('fulfilReferral: a create the Shopify transport resent after renewing its token', () => {
  it('confirms a TAKEN "not ours" before replacing the code, since its first send may have made our card', async () => {
    // Prepare
    const { fetch, creates } = shop();
    const auth = new ClientCredentialsTokens({ origin: ORIGIN, clientId: 'cid', clientSecret: 'shpss_x', fetch });
    const issuer = giftCardIssuer(new ShopifyTransport({ baseUrl: ORIGIN, auth, apiVersion: '2026-04', fetch, pacer: false }));
    const ledger = new MemoryLedger(() => NOW);
    let n = 0;
    const deps: FulfilDeps = {
      ledger,
      shopify: issuer,
      customerio: { sendFulfilment: async () => undefined },
      rewardAmount: '25.00',
      customerioEvent: 'pyramid_scheme_fulfillment',
      newCode: () => `CODE${String(++n).padStart(4, '0')}`,
      customerioEventId: () => '01JD4F4V3D7KXA5BH1T1Y0PTB1',
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
      now: () => NOW,
    };

    // Act
    const error = await failure(fulfilReferral(REFERRAL, deps, { owner: 'request-1/message-1', deadline: Date.now() + 30_000 }));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect(creates.filter((code) => code === 'CODE0001')).toHaveLength(2);
    expect(ledger.calls.filter((call) => call.op === 'replaceCode')).toEqual([]);
    expect(ledger.records.get(EVENT_ID)).toMatchObject({ referrerCode: 'CODE0001', referrerTakenSeenCode: 'CODE0001' });
  });
});
