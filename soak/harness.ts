/** Small helpers the soak's phases share: waiting for the queue, seeded randomness, tallies. */
import { sleep } from '../lib/infra/retry';
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

/** Awaits `promise`, calling `slow` once if it takes longer than `ms`. */
export async function watch<T>(promise: Promise<T>, ms: number, slow: () => void): Promise<T> {
  const timer = setTimeout(slow, ms);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
  }
}

export function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

/** sfc32 seeded from (seed, stream) through splitmix32: small, fast, and good enough for chaos. */
export function prng(seed: number, stream = 0): () => number {
  let state = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  const splitmix = () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

export function seededUuid(rng: () => number): string {
  const bytes = Array.from({ length: 16 }, () => Math.floor(rng() * 256));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function weighted<K extends string>(rng: () => number, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as [K, number][];
  let r = rng() * entries.reduce((total, [, w]) => total + w, 0);
  for (const [kind, weight] of entries) {
    r -= weight;
    if (r < 0) return kind;
  }
  return entries[entries.length - 1][0];
}

export function shuffle<T>(rng: () => number, items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

export function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

export function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

export function tally(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

export function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((total, n) => total + n, 0);
}

export function pct(part: number, whole: number): string {
  return `${whole ? ((100 * part) / whole).toFixed(1) : '0'} %`;
}
