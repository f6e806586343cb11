import type { Fetch } from '../../lib/infra/http';
import { ShopifyPacer, type PacerOptions, type PacerPermit } from '../../lib/adapters/shopify/pacing';
import { giftCardIssuer } from '../../lib/adapters/shopify/gift-cards';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { StaticToken } from '../../lib/adapters/shopify/auth';

/** A clock that moves only when told to, firing the sleeps that fall due on the way. */
class FakeClock {
  public t = 0;
  private timers: { at: number; resolve: () => void }[] = [];

  public readonly now = (): number => this.t;

  public readonly sleep = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      this.timers.push({ at: this.t + ms, resolve });
    });

  /** Moves time forward, letting every woken caller run before the next timer fires. */
  public async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.resolve();
    }
    this.t = end;
    await settle();
  }
}

/** Lets pending promise callbacks run (real macrotask: no fake timers in this file). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function pacerWith(clock: FakeClock, options: PacerOptions = {}): ShopifyPacer {
  return new ShopifyPacer({ now: clock.now, sleep: clock.sleep, ...options });
}

/** Gives the pacer a first reading, as the answer to one request would. */
async function seed(pacer: ShopifyPacer, currentlyAvailable: number, restoreRate = 100, requestedQueryCost = 10): Promise<void> {
  const permit = await pacer.acquire('giftCardCreate');
  pacer.settle(permit, { currentlyAvailable, maximumAvailable: 1000, restoreRate, requestedQueryCost });
}

/** Starts acquire() and records when (on the fake clock) it let the request go. */
function track(pacer: ShopifyPacer, clock: FakeClock, operation = 'giftCardCreate') {
  const state: { permit?: PacerPermit; at?: number } = {};
  const promise = pacer.acquire(operation).then((permit) => {
    state.permit = permit;
    state.at = clock.t;
    return permit;
  });
  return { state, promise };
}

describe('ShopifyPacer', () => {
  it('lets a request go at once when the bucket covers it', async () => {
    // Prepare
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    await seed(pacer, 500);

    // Act
    const { state } = track(pacer, clock);
    await clock.advance(0);

    // Assess
    expect(state.at).toBe(0);
    expect(state.permit?.waitedMs).toBe(0);
  });

  it('waits when the bucket is short, until the restore rate has refilled it', async () => {
    // Prepare: 5 points left, 10 needed, 100 points/s back
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    await seed(pacer, 5);

    // Act
    const { state } = track(pacer, clock);
    await clock.advance(49);
    const before = state.permit;
    await clock.advance(1);

    // Assess
    expect(before).toBeUndefined();
    expect(state.at).toBe(50);
    expect(state.permit?.waitedMs).toBe(50);
    expect(pacer.stats).toMatchObject({ waited: 1, waitedMs: 50, capped: 0 });
  });

  it('shares one budget between concurrent callers, in the order they asked', async () => {
    // Prepare: 25 points hold two creates; the third needs 5 more, the fourth 15 more
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    await seed(pacer, 25);

    // Act
    const callers = [track(pacer, clock), track(pacer, clock), track(pacer, clock), track(pacer, clock)];
    await clock.advance(200);

    // Assess
    expect(callers.map((caller) => caller.state.at)).toEqual([0, 0, 50, 150]);
    expect(pacer.estimate?.reserved).toBe(40);
  });

  it('re-bases on every answer, so a caller waits for what the shop really has', async () => {
    // Prepare: two requests in flight, then the shop reports the bucket drained by someone else
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    await seed(pacer, 1000);
    const first = await pacer.acquire('giftCardCreate');
    const second = await pacer.acquire('giftCardCreate');

    // Act
    pacer.settle(first, { currentlyAvailable: 0, maximumAvailable: 1000, restoreRate: 100, requestedQueryCost: 10 });
    const third = track(pacer, clock);
    await clock.advance(150);
    const afterStillInFlight = third.state.at;
    pacer.settle(second, { currentlyAvailable: 0, maximumAvailable: 1000, restoreRate: 100, requestedQueryCost: 10 });
    await clock.advance(200);

    // Assess: while `second` is in flight its 10 points stay reserved (0 + 10 restored - 10 - 10 < 0)
    expect(afterStillInFlight).toBeUndefined();
    // Its answer (sent after `first`) re-bases at 0 at t=150: 10 more points take 100 ms, a little
    // more as the pacer starts to count the drained points as someone else's spending
    expect(third.state.at).toBeGreaterThanOrEqual(250);
    expect(third.state.at).toBeLessThan(260);
    expect(pacer.estimate?.foreignRate).toBeGreaterThan(0);
  });

  it('learns the restore rate and the cost of an operation from the answers', async () => {
    // Prepare: a slow shop (50 points/s); a look-up that reports costing 4 leaves the bucket empty
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    await seed(pacer, 100, 50, 10);
    const query = await pacer.acquire('giftCards');
    pacer.settle(query, { currentlyAvailable: 0, maximumAvailable: 1000, restoreRate: 50, requestedQueryCost: 4 });

    // Act
    const create = track(pacer, clock, 'giftCardCreate');
    const lookUp = track(pacer, clock, 'giftCards');
    await clock.advance(400);

    // Assess: 10 points at 50/s = 200 ms; then 4 more = 80 ms
    expect(pacer.costOf('giftCards')).toBe(4);
    expect(pacer.costOf('giftCardCreate')).toBe(10);
    expect(create.state.at).toBe(200);
    expect(lookUp.state.at).toBe(280);

    // Act: at t=400 both answer, and the plan has been upgraded (200 points/s). The bucket holds
    // 0 + 50 × 0.4 - 10 - 4 = 6 points: nobody else spent anything.
    pacer.settle(create.state.permit!, { currentlyAvailable: 10, maximumAvailable: 2000, restoreRate: 200, requestedQueryCost: 10 });
    pacer.settle(lookUp.state.permit!, { currentlyAvailable: 6, maximumAvailable: 2000, restoreRate: 200, requestedQueryCost: 4 });
    const later = track(pacer, clock);
    await clock.advance(100);

    // Assess: the 4 missing points at 200/s = 20 ms
    expect(pacer.estimate).toMatchObject({ restoreRate: 200, maximumAvailable: 2000, foreignRate: 0 });
    expect(later.state.at! - 400).toBe(20);
  });

  it('learns what others spend from the readings and leaves them their share', async () => {
    // Prepare: a shop restoring 100 points/s of which another container spends 50
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    const restore = 100;
    const others = 50;
    let level = 200;
    let seenAt = 0;
    const sentAt: number[] = [];
    let throttledLate = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const permit = await pacer.acquire('giftCardCreate');
        level = Math.min(1000, level + ((clock.t - seenAt) / 1000) * (restore - others));
        seenAt = clock.t;
        const runs = level >= 10;
        if (runs) level -= 10;
        else if (clock.t > 20_000) throttledLate++;
        if (runs) sentAt.push(clock.t);
        pacer.settle(permit, {
          currentlyAvailable: Math.floor(level),
          maximumAvailable: 1000,
          restoreRate: restore,
          requestedQueryCost: 10,
          actualQueryCost: runs ? 10 : null,
        });
        await settle();
      }
    })();

    // Act: 40 s of simulated time
    for (let i = 0; i < 400; i++) await clock.advance(100);
    stop = true;
    await clock.advance(1_000);
    await loop;

    // Assess: once the estimate has settled (a few smoothing periods), about 5 creates/s and next to no throttling
    const steady = sentAt.filter((t) => t > 20_000 && t <= 40_000).length / 20;
    expect(pacer.estimate?.foreignRate).toBeGreaterThan(40);
    expect(pacer.estimate?.foreignRate).toBeLessThan(60);
    expect(steady).toBeGreaterThan(4.5);
    expect(steady).toBeLessThanOrEqual(5.1);
    expect(throttledLate).toBeLessThanOrEqual(5);
  });

  it("caps a single wait, so the caller's retry policy and deadline still decide", async () => {
    // Prepare: an empty bucket restoring 1 point/s would mean a 10 s wait
    const clock = new FakeClock();
    const pacer = pacerWith(clock, { maxWaitMs: 1_000 });
    await seed(pacer, 0, 1);

    // Act
    const { state } = track(pacer, clock);
    await clock.advance(5_000);

    // Assess
    expect(state.at).toBe(1_000);
    expect(pacer.stats.capped).toBe(1);
  });

  it('caps the wait even when the clock does not move', async () => {
    // Prepare: a frozen clock and sleeps that return at once
    const pacer = new ShopifyPacer({ now: () => 0, sleep: async () => undefined, maxWaitMs: 1_000 });
    const first = await pacer.acquire('giftCardCreate');
    pacer.settle(first, { currentlyAvailable: 0, maximumAvailable: 1000, restoreRate: 100, requestedQueryCost: 10 });

    // Act
    const permit = await pacer.acquire('giftCardCreate');

    // Assess
    expect(permit.seq).toBe(2);
    expect(pacer.stats.capped).toBe(1);
  });

  it("lets one referral's two requests go before the bucket is known, and holds the rest for an answer", async () => {
    // Prepare: a fresh container knows nothing about the bucket
    const clock = new FakeClock();
    const pacer = pacerWith(clock);

    // Act
    const callers = [track(pacer, clock), track(pacer, clock), track(pacer, clock), track(pacer, clock)];
    await clock.advance(500);
    const heldBack = callers.map((caller) => caller.state.permit !== undefined);
    pacer.settle(callers[0].state.permit!, { currentlyAvailable: 990, maximumAvailable: 1000, restoreRate: 100, requestedQueryCost: 10 });
    await clock.advance(0);

    // Assess
    expect(heldBack).toEqual([true, true, false, false]);
    expect(callers.map((caller) => caller.state.at)).toEqual([0, 0, 500, 500]);
  });

  it('lets the next request go when the first one got no answer at all', async () => {
    // Prepare
    const clock = new FakeClock();
    const pacer = pacerWith(clock, { initialAllowance: 10 });
    const first = track(pacer, clock);
    const second = track(pacer, clock);
    await clock.advance(100);
    const heldBack = second.state.permit;

    // Act: the first request times out
    pacer.settle(first.state.permit!);
    await clock.advance(0);

    // Assess
    expect(heldBack).toBeUndefined();
    expect(second.state.at).toBe(100);
  });

  it('counts a request that got no answer as spent, and ignores a stale reading', async () => {
    // Prepare
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    await seed(pacer, 100);
    const older = await pacer.acquire('giftCardCreate');
    const lost = await pacer.acquire('giftCardCreate');
    const newer = await pacer.acquire('giftCardCreate');

    // Act: the lost request's points are spent; `newer` reports; then `older`'s answer straggles in
    pacer.settle(lost);
    expect(pacer.estimate?.available).toBe(90);
    pacer.settle(newer, { currentlyAvailable: 60, maximumAvailable: 1000, restoreRate: 100, requestedQueryCost: 10 });
    pacer.settle(older, { currentlyAvailable: 90, maximumAvailable: 1000, restoreRate: 100, requestedQueryCost: 10 });

    // Assess
    expect(pacer.estimate).toMatchObject({ available: 60, reserved: 0 });
  });
});

describe('ShopifyPacer.refillMs: when a refused request would get its turn', () => {
  it('counts the refill for the requests queued ahead of it as well as its own', async () => {
    // Prepare: an empty bucket restoring 100/s, and two 10-point requests already waiting
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    await seed(pacer, 0);
    track(pacer, clock);
    track(pacer, clock);
    await settle();

    // Act
    const wait = pacer.refillMs(10);

    // Assess: (10 + 10 + 10 - 0) / 100 per second
    expect(wait).toBe(300);
  });

  it('knows nothing before the first reading', () => {
    // Act
    const wait = pacerWith(new FakeClock()).refillMs(10);

    // Assess
    expect(wait).toBeUndefined();
  });
});

describe('ShopifyPacer with a share of the shop: containers that do not fight over one bucket', () => {
  /**
   * `containers` pacers, each with `share`, and 10 records each (a batch) sending creates with a
   * 300 ms round trip into one simulated bucket (restore 100/s, 1,000 points, full at the start).
   */
  async function simulate(containers: number, share: number, seconds: number) {
    const clock = new FakeClock();
    const restore = 100;
    const maximum = 1000;
    let level = maximum;
    let levelAt = 0;
    const refill = () => {
      level = Math.min(maximum, level + ((clock.t - levelAt) / 1000) * restore);
      levelAt = clock.t;
    };
    let calls = 0;
    let throttled = 0;
    let created = 0;
    let stop = false;
    const loops: Promise<void>[] = [];
    for (let c = 0; c < containers; c++) {
      const pacer = pacerWith(clock, { share, maxWaitMs: 60_000 });
      for (let record = 0; record < 10; record++) {
        loops.push(
          (async () => {
            while (!stop) {
              const permit = await pacer.acquire('giftCardCreate');
              if (stop) break;
              refill();
              calls++;
              const runs = level >= 10;
              if (runs) {
                level -= 10;
                created++;
              } else throttled++;
              await clock.sleep(300);
              refill();
              pacer.settle(permit, {
                currentlyAvailable: Math.floor(level),
                maximumAvailable: maximum,
                restoreRate: restore,
                requestedQueryCost: 10,
                actualQueryCost: runs ? 10 : null,
              });
            }
          })(),
        );
      }
    }
    for (let i = 0; i < seconds * 10; i++) await clock.advance(100);
    stop = true;
    await clock.advance(61_000);
    await Promise.all(loops);
    return { calls, throttled, created };
  }

  it("does not spend the others' part that a reading still shows while their requests are in flight", async () => {
    // Prepare: half of a shop whose bucket holds 100 points (our part: 50), no time passing
    const clock = new FakeClock();
    const pacer = pacerWith(clock, { share: 0.5 });
    await seed(pacer, 100);
    const ours = await Promise.all(Array.from({ length: 5 }, () => pacer.acquire('giftCardCreate')));
    // Our 50 points have run; the other container's 50 are on their way, so the shop still shows 50.
    for (const permit of ours)
      pacer.settle(permit, { currentlyAvailable: 50, maximumAvailable: 1000, restoreRate: 100, requestedQueryCost: 10 });

    // Act
    const next = track(pacer, clock);
    await clock.advance(300);

    // Assess: it waits for our half of the restore (10 points at 50/s), not for nothing
    expect(next.state.at).toBe(200);
  });

  it('keeps four containers sharing a standard shop under 1 THROTTLED answer per 100 calls', async () => {
    // Act: 60 s of simulated time
    const { calls, throttled } = await simulate(4, 1 / 4, 60);

    // Assess
    expect(calls).toBeGreaterThan(500);
    expect(throttled / calls).toBeLessThanOrEqual(0.01);
  });

  it('still spends the whole budget between them: the bucket at the start, then the restore rate', async () => {
    // Act
    const { created } = await simulate(4, 1 / 4, 60);

    // Assess: at most (1,000 + 100 × 60) / 10 = 700 creates; at least 95 % of it
    expect(created).toBeGreaterThanOrEqual(0.95 * 700);
    expect(created).toBeLessThanOrEqual(700);
  });
});

describe('Shopify transport with a pacer', () => {
  function reply(currentlyAvailable: number): Response {
    return new Response(
      JSON.stringify({
        data: {
          giftCardCreate: { giftCard: { id: 'gid://shopify/GiftCard/1', lastCharacters: 'WXYZ' }, giftCardCode: 'x', userErrors: [] },
        },
        extensions: {
          cost: {
            requestedQueryCost: 10,
            actualQueryCost: 10,
            throttleStatus: { maximumAvailable: 1000, currentlyAvailable, restoreRate: 100 },
          },
        },
      }),
      { status: 200, headers: { 'Content-Type': 'application/json' } },
    );
  }

  it('waits on the pacer before each request and feeds it every answer', async () => {
    // Prepare: the first answer says 5 points are left
    const clock = new FakeClock();
    const pacer = pacerWith(clock);
    const sentAt: number[] = [];
    const fetchImpl = (async () => {
      sentAt.push(clock.t);
      return reply(5);
    }) as unknown as Fetch;
    // 2026-04: gift cards take initialValue there, so each create is one request (no shop currency read).
    const transport = new ShopifyTransport({
      baseUrl: 'https://shop.myshopify.com',
      auth: new StaticToken('t'),
      apiVersion: '2026-04',
      fetch: fetchImpl,
      pacer,
    });
    const client = giftCardIssuer(transport);

    // Act
    await client.createGiftCard({ code: 'ABCD1234WXYZ', amount: '25.00', note: 'n' });
    const second = client.createGiftCard({ code: 'EFGH5678WXYZ', amount: '25.00', note: 'n' });
    await clock.advance(100);
    await second;

    // Assess
    expect(transport.pacer).toBe(pacer);
    expect(sentAt).toEqual([0, 50]);
    expect(pacer.estimate).toMatchObject({ reserved: 0, restoreRate: 100 });
  });

  it('paces by default and can be turned off', () => {
    const options = { baseUrl: 'https://shop.myshopify.com', auth: new StaticToken('t'), apiVersion: '2026-07' };
    expect(new ShopifyTransport(options).pacer).toBeInstanceOf(ShopifyPacer);
    expect(new ShopifyTransport({ ...options, pacer: false }).pacer).toBeUndefined();
  });
});
