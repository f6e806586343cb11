import { CONTENTION_RETRY_MS, RetryableError } from '../../lib/domain/errors';
import { planRedelivery } from '../../lib/infra/redelivery';

const QUEUE_VISIBILITY = 360;
const LOW = () => 0;
const HIGH = () => 0.999_999;

describe('planRedelivery: a wait the cause names', () => {
  const contention = new RetryableError('the redeemer is claimed by an undecided referral', { retryAfterMs: CONTENTION_RETRY_MS });

  it('brings a record waiting on another referral back in 2 to 10 seconds on its first failure', () => {
    // Act
    const shortest = planRedelivery(contention, 1, QUEUE_VISIBILITY, LOW);
    const longest = planRedelivery(contention, 1, QUEUE_VISIBILITY, HIGH);

    // Assess
    expect([shortest, longest]).toEqual([
      { visibilitySeconds: 2, cause: 'hinted' },
      { visibilitySeconds: 10, cause: 'hinted' },
    ]);
  });

  it('doubles the wait on each further receive, so five receives outlast a slow holder', () => {
    // Act
    const waits = [1, 2, 3, 4].map((receive) => planRedelivery(contention, receive, QUEUE_VISIBILITY, LOW).visibilitySeconds);

    // Assess
    expect(waits).toEqual([2, 4, 8, 16]);
  });

  it("waits at least Shopify's refill time for THROTTLED", () => {
    // Prepare
    const throttled = new RetryableError('shopify giftCardCreate: throttled (HTTP 200)', { retryAfterMs: 4_200 });

    // Act
    const plan = planRedelivery(throttled, 1, QUEUE_VISIBILITY, LOW);

    // Assess
    expect(plan.visibilitySeconds).toBe(5);
  });

  it('rounds a sub-second hint up to one second', () => {
    // Act
    const plan = planRedelivery(new RetryableError('throttled', { retryAfterMs: 30 }), 1, QUEUE_VISIBILITY, LOW);

    // Assess
    expect(plan.visibilitySeconds).toBe(1);
  });
});

describe('planRedelivery: an outage or unknown cause', () => {
  it("backs off from a service's own outage though it sent a Retry-After of a second, so five receives outlast minutes of it", () => {
    // Prepare
    const down = new RetryableError('shopify giftCardCreate: HTTP 503', { retryAfterMs: 1_000, outage: true });

    // Act
    const waits = [1, 2, 3, 4].map((receive) => planRedelivery(down, receive, QUEUE_VISIBILITY, LOW).visibilitySeconds);

    // Assess
    expect(waits).toEqual([15, 30, 60, 120]);
  });

  it("keeps an outage's Retry-After when it is longer than the backoff", () => {
    // Prepare
    const down = new RetryableError('customer.io: HTTP 503', { retryAfterMs: 120_000, outage: true });

    // Act
    const plan = planRedelivery(down, 1, QUEUE_VISIBILITY, LOW);

    // Assess
    expect(plan).toEqual({ visibilitySeconds: 120, cause: 'backoff' });
  });

  it('backs off from 15-30 s on the first failure', () => {
    // Prepare
    const outage = new RetryableError('customer.io: HTTP 503');

    // Act
    const waits = [LOW, HIGH].map((random) => planRedelivery(outage, 1, QUEUE_VISIBILITY, random).visibilitySeconds);

    // Assess
    expect(waits).toEqual([15, 30]);
  });

  it('doubles per receive up to the queue visibility timeout', () => {
    // Prepare
    const outage = new RetryableError('shopify: HTTP 502');

    // Act
    const longest = [1, 2, 3, 4, 5].map((receive) => planRedelivery(outage, receive, QUEUE_VISIBILITY, HIGH).visibilitySeconds);

    // Assess
    expect(longest).toEqual([30, 60, 120, 240, 360]);
  });

  it('treats an error that is not a RetryableError (a bug, a crash of a dependency) as an outage', () => {
    // Act
    const plan = planRedelivery(new TypeError('x is undefined'), 1, QUEUE_VISIBILITY, LOW);

    // Assess
    expect(plan).toEqual({ visibilitySeconds: 15, cause: 'backoff' });
  });
});

describe("planRedelivery: the queue's visibility timeout is the ceiling", () => {
  it('never makes a record wait longer than the queue alone would', () => {
    // Prepare
    const lease = new RetryableError('another worker is fulfilling this referral', { retryAfterMs: 600_000 });

    // Act
    const plans = [lease, new RetryableError('outage')].map((error) => planRedelivery(error, 4, 1, HIGH).visibilitySeconds);

    // Assess
    expect(plans).toEqual([1, 1]);
  });
});
