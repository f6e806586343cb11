import { sleep } from '../lib/retry';
import type { Pipeline } from '../tests/support/pipeline';

/** Waits until the queue has nothing visible or in flight, twice in a row (the pollers keep running). */
export async function settle(pipeline: Pipeline, until: number): Promise<boolean> {
  let quiet = 0;
  while (Date.now() < until) {
    const depth = await pipeline.depth(pipeline.resources.queueUrl);
    quiet = depth.visible + depth.inFlight === 0 ? quiet + 1 : 0;
    if (quiet >= 2) return true;
    await sleep(250);
  }
  return false;
}

export function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}
