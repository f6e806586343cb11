/**
 * The Admin API's leaky bucket as the sandbox keeps it: points drain per call and refill
 * continuously at `restoreRate` a second, so the level is computed from the time since the last
 * look. Its state is what every answer reports in `extensions.cost.throttleStatus`.
 */
import type { Json } from './shopify-values';

export class LeakyBucket {
  private available: number;
  private refilledAt = Date.now();

  public constructor(
    readonly size: number,
    readonly restoreRate: number,
  ) {
    this.available = size;
  }

  /** Takes `cost` points if the bucket holds them; false (nothing taken) when the call must be throttled. */
  public take(cost: number): boolean {
    this.refill();
    if (this.available < cost) return false;
    this.available -= cost;
    return true;
  }

  /** Another app on the same store drained the shared bucket. */
  public drain(): void {
    this.refill();
    this.available = 0;
  }

  public reset(): void {
    this.available = this.size;
    this.refilledAt = Date.now();
  }

  public costExtension(requested: number, actual: number | null): Json {
    return {
      cost: {
        requestedQueryCost: requested,
        actualQueryCost: actual,
        throttleStatus: {
          maximumAvailable: this.size,
          currentlyAvailable: Math.floor(this.available),
          restoreRate: this.restoreRate,
        },
      },
    };
  }

  private refill(): void {
    const now = Date.now();
    this.available = Math.min(this.size, this.available + ((now - this.refilledAt) / 1000) * this.restoreRate);
    this.refilledAt = now;
  }
}
