// Logs must be written for the no-secret check to mean anything (tests/support/env.ts silences
// them, and the logger reads its level once): set the level first, require the pipeline after.
process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';

import type * as PipelineModule from '../support/pipeline';
import { giftCardNote } from '../../lib/domain/rewards';
import { sleep } from '../../lib/infra/retry';

/* eslint-disable @typescript-eslint/no-require-imports */
const { Pipeline, referralBody } = require('../support/pipeline') as typeof PipelineModule;
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * A Dev Dashboard app end to end: the worker gets its Shopify token by the client credentials
 * grant from the sandbox shop, whose tokens here live 2 s, so a run of referrals crosses several
 * expiries, an early revocation and a forced 401; every referral must still be paid exactly once,
 * the token endpoint asked a bounded number of times (per expiry, not per request), and no token
 * or client secret written to any log.
 */

const CLIENT_SECRET = 'shpss_refresh_test_client_secret';
const TOKEN_TTL_MS = 2_000;
const WAVE = 4;

describe('Shopify tokens by the client credentials grant, across expiries', () => {
  const logged: string[] = [];
  const restore: (() => void)[] = [];

  beforeAll(() => {
    for (const stream of [process.stdout, process.stderr]) {
      const spy = jest.spyOn(stream, 'write').mockImplementation(((chunk: unknown) => {
        logged.push(String(chunk));
        return true;
      }) as typeof stream.write);
      restore.push(() => spy.mockRestore());
    }
    for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      const spy = jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        logged.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      });
      restore.push(() => spy.mockRestore());
    }
  });

  afterAll(() => {
    while (restore.length > 0) restore.pop()!();
  });

  it('pays every referral exactly once and asks for a token per expiry, not per request', async () => {
    // Prepare
    const pipeline = await Pipeline.start({
      shopify: { clientCredentials: { clientId: 'refresh-test-app', clientSecret: CLIENT_SECRET, tokenTtlMs: TOKEN_TTL_MS } },
    });
    const eventIds: string[] = [];
    const wave = async (): Promise<void> => {
      for (let i = 0; i < WAVE; i++) {
        const { uuid, body } = referralBody();
        eventIds.push(uuid);
        await pipeline.post(body);
      }
      await pipeline.drain();
    };

    try {
      // Act: a wave per token, with two natural expiries, a revocation and a forced 401 between
      await wave();
      await sleep(TOKEN_TTL_MS + 200);
      await wave();
      pipeline.shopify.revokeTokens();
      await wave();
      pipeline.shopify.injectFaults('unauthorized');
      await wave();
      await sleep(TOKEN_TTL_MS + 200);
      await wave();

      // Assess: every referral paid once
      for (const eventId of eventIds) {
        const record = await pipeline.record(eventId);
        expect(record?.status).toBe('COMPLETED');
        expect(
          pipeline
            .cardsFor(eventId)
            .map((card) => card.note)
            .sort(),
        ).toEqual([giftCardNote(eventId, 'redeemer'), giftCardNote(eventId, 'referrer')]);
        expect(pipeline.customerio.events.filter((event) => event.id === record?.customerioEventId)).toHaveLength(1);
      }
      expect(pipeline.shopify.cards).toHaveLength(2 * eventIds.length);
      expect(await pipeline.deadLetters()).toEqual([]);

      // Assess: the refused tokens were met with a 401 and a renewal; grants stay few
      const adminCalls = pipeline.shopify.requests.length;
      const refused = pipeline.shopify.requests.filter((r) => r.status === 401).length;
      expect(refused).toBeGreaterThanOrEqual(2);
      expect(pipeline.shopify.tokenRequests.every((status) => status === 200)).toBe(true);
      // 1 first grant + 2 expiries + 1 revocation + 1 forced 401, with slack for a wave that outlives a token
      expect(pipeline.shopify.tokenRequests.length).toBeGreaterThanOrEqual(4);
      expect(pipeline.shopify.tokenRequests.length).toBeLessThanOrEqual(9);
      expect(adminCalls).toBeGreaterThan(4 * pipeline.shopify.tokenRequests.length);
    } finally {
      await pipeline.stop();
    }

    // Assess: no secret in anything written
    const text = logged.join('\n');
    expect(logged.length).toBeGreaterThan(0);
    expect(text).not.toContain(CLIENT_SECRET);
    expect(text).not.toMatch(/shpat_[0-9a-f]{32}/);
  });
});
