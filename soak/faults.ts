/**
 * What the soak breaks, and how: upstream faults drawn per call (Shopify, Customer.io), crashes
 * at the worker's checkpoints (soft: an exception; hard: the process dies and leaves its lease),
 * and a wrapping ledger — handed to the pipeline as `wrapLedger`, the real one untouched — that
 * makes a hard crash skip the worker's error bookkeeping and counts the ledger's begins.
 */
import type { Ledger } from '../lib/adapters/dynamodb/ledger';
import type { Checkpoint } from '../lib/domain/rewards';
import type { CustomerIoFault } from '../local/sandbox/customerio';
import type { ShopifyFault } from '../local/sandbox/shopify';
import { Pipeline } from '../tests/support/pipeline';
import { prng, weighted, zeroes } from './harness';

export const CHECKPOINTS: readonly Checkpoint[] = [
  'begun',
  'decided',
  'card:referrer',
  'card:redeemer',
  'customerio',
  'posthog',
  'completed',
];
export const SHOPIFY_FAULTS = ['http500', 'http503', 'http429', 'throttled', 'internal-error', 'lost-response', 'timeout'] as const;
export const CUSTOMERIO_FAULTS = ['http500', 'http503', 'http429', 'lost-response', 'timeout'] as const;
export type SoakShopifyFault = (typeof SHOPIFY_FAULTS)[number];
export type SoakCustomerIoFault = (typeof CUSTOMERIO_FAULTS)[number];
export type CrashKind = 'soft' | 'hard';

/** Relative weights: timeouts are the slowest fault, so they are the rarest. */
const SHOPIFY_WEIGHTS: Record<SoakShopifyFault, number> = {
  http500: 3,
  http503: 2,
  http429: 2,
  throttled: 3,
  'internal-error': 1,
  'lost-response': 4,
  timeout: 1,
};
const CUSTOMERIO_WEIGHTS: Record<SoakCustomerIoFault, number> = { http500: 3, http503: 3, http429: 2, 'lost-response': 4, timeout: 1 };

export const HARD_CRASH = 'chaos: hard crash';
const SOFT_CRASH = 'chaos: crash';

export interface FaultCounts {
  shopify: Record<SoakShopifyFault, number>;
  customerio: Record<SoakCustomerIoFault, number>;
}
export interface CrashCounts {
  soft: Record<Checkpoint, number>;
  hard: Record<Checkpoint, number>;
}
export interface BeginCounts {
  acquired: number;
  busy: number;
  finished: number;
  takeoversAfterHardCrash: number;
}

export interface ChaosOptions {
  faultRate: number;
  crashRate: number;
  hardCrashShare: number;
  /** One stream each, so changing one rate does not reshuffle the others. */
  rng: { shopify: () => number; customerio: () => number; crash: () => number };
  trace?: (eventId: string | undefined, what: string) => void;
}

/** The faults of one pipeline: switch them off with `chaos.on = false` before the redrive. */
export class Chaos {
  public on = true;
  public readonly faults: FaultCounts = { shopify: zeroes(SHOPIFY_FAULTS), customerio: zeroes(CUSTOMERIO_FAULTS) };
  public readonly crashes: CrashCounts = { soft: zeroes(CHECKPOINTS), hard: zeroes(CHECKPOINTS) };
  public readonly begins: BeginCounts = { acquired: 0, busy: 0, finished: 0, takeoversAfterHardCrash: 0 };
  private readonly deadLeases = new Set<string>();
  private readonly trace: (eventId: string | undefined, what: string) => void;

  public constructor(private readonly options: ChaosOptions) {
    this.trace = options.trace ?? (() => undefined);
  }

  /** Shopify's fault policy: the first faults go through every kind once, so even a short run sees them all. */
  public readonly shopifyFault = (): ShopifyFault | undefined =>
    this.draw(this.options.rng.shopify, SHOPIFY_FAULTS, SHOPIFY_WEIGHTS, this.faults.shopify);

  public readonly customerioFault = (): CustomerIoFault | undefined =>
    this.draw(this.options.rng.customerio, CUSTOMERIO_FAULTS, CUSTOMERIO_WEIGHTS, this.faults.customerio);

  /** One system's fault, if any: at faultRate, each kind once first, then by weight; counted. */
  private draw<K extends string>(
    rng: () => number,
    kinds: readonly K[],
    weights: Record<K, number>,
    counts: Record<K, number>,
  ): K | undefined {
    if (!this.on || rng() >= this.options.faultRate) return undefined;
    const fault = kinds.find((kind) => counts[kind] === 0) ?? weighted(rng, weights);
    counts[fault]++;
    return fault;
  }

  /** The pipeline's checkpoint hook: every checkpoint gets at least one crash of each kind, then chance decides. */
  public readonly checkpoint = (step: Checkpoint, eventId: string): void => {
    if (!this.on) return;
    const { crashRate, hardCrashShare, rng } = this.options;
    let kind: CrashKind | undefined;
    if (crashRate > 0 && !this.crashes.soft[step]) kind = 'soft';
    else if (crashRate > 0 && hardCrashShare > 0 && !this.crashes.hard[step]) kind = 'hard';
    else if (rng.crash() < crashRate) kind = rng.crash() < hardCrashShare ? 'hard' : 'soft';
    if (!kind) {
      this.trace(eventId, `checkpoint ${step}`);
      return;
    }
    this.crashes[kind][step] = (this.crashes[kind][step] ?? 0) + 1;
    this.trace(eventId, `checkpoint ${step}: ${kind} crash`);
    if (kind === 'hard') this.deadLeases.add(eventId);
    throw new Error(`${kind === 'hard' ? HARD_CRASH : SOFT_CRASH} after ${step}`);
  };

  /**
   * The pipeline's `wrapLedger`: a hard crash is the process dying right after the step, so the
   * worker's error path (which frees the lease, or records retries_exhausted) never runs and the
   * lease stays until it expires. Everything else is the real ledger's, through the prototype.
   */
  public readonly wrapLedger = (ledger: Ledger): Ledger => {
    const { begins, deadLeases, trace } = this;
    return Object.assign(Object.create(ledger) as Ledger, {
      begin: async (...args: Parameters<Ledger['begin']>) => {
        const [referral, input] = args;
        const result = await ledger.begin(...args);
        if (result.outcome === 'acquired') {
          begins.acquired++;
          if (deadLeases.delete(referral.eventId)) begins.takeoversAfterHardCrash++;
        } else if (result.outcome === 'busy') begins.busy++;
        else begins.finished++;
        trace(referral.eventId, `begin ${result.outcome} by ${input.owner.slice(0, 8)} (attempts ${result.record?.attempts ?? '-'})`);
        return result;
      },
      // A retryable failure's release (lib/domain/steps.ts): a hard crash never makes it.
      write: async (...args: Parameters<Ledger['write']>) => {
        const [eventId, , change] = args;
        const message = String(change.set?.lastError ?? '');
        if (change.step === 'release' && message.startsWith(HARD_CRASH)) throw new Error(message);
        if (change.step === 'release') trace(eventId, `release: ${message}`);
        return ledger.write(...args);
      },
      fail: async (...args: Parameters<Ledger['fail']>) => {
        const [eventId, , reason, message] = args;
        if (message.startsWith(HARD_CRASH)) return false;
        const done = await ledger.fail(...args);
        trace(eventId, `fail ${reason} (${done ? 'recorded' : 'not recorded'}): ${message}`);
        return done;
      },
    });
  };
}

/** What a soak phase on a pipeline of its own (soak/lifecycle.ts, soak/qualify.ts) takes from the main soak. */
export interface ChaosPhaseOptions {
  rounds: number;
  seed: number;
  faultRate: number;
  crashRate: number;
  hardCrashShare: number;
  pollers: number;
  visibilityTimeoutSeconds: number;
  workerTimeoutMs: number;
  clientTimeoutMs: number;
  log: (line: string) => void;
}

/**
 * A phase's own pipeline with `env`, under the main soak's Shopify / Customer.io faults and worker
 * crashes, drawn from the seed's `streams` (one a phase, so no two phases draw the same chaos).
 */
export async function startChaosPipeline(
  options: ChaosPhaseOptions,
  streams: { shopify: number; customerio: number; crash: number },
  env: Record<string, string>,
): Promise<{ chaos: Chaos; pipeline: Pipeline }> {
  const chaos = new Chaos({
    faultRate: options.faultRate,
    crashRate: options.crashRate,
    hardCrashShare: options.hardCrashShare,
    rng: {
      shopify: prng(options.seed, streams.shopify),
      customerio: prng(options.seed, streams.customerio),
      crash: prng(options.seed, streams.crash),
    },
  });
  const pipeline = await Pipeline.start({
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
    workerTimeoutMs: options.workerTimeoutMs,
    clientTimeoutMs: options.clientTimeoutMs,
    pollWaitTimeSeconds: 1,
    env,
    shopify: { bucket: { size: 1000, restoreRate: 5_000 } },
    checkpoint: chaos.checkpoint,
    wrapLedger: chaos.wrapLedger,
  });
  pipeline.shopify.setFaultPolicy(chaos.shopifyFault);
  pipeline.customerio.setFaultPolicy(chaos.customerioFault);
  return { chaos, pipeline };
}
