import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, workerBundleFiles, workerSourceFiles } from '../support/worker-inputs';

/**
 * Revoking a reward is the operator's (ops review): its Shopify mutations stay out of the files
 * the worker's bundle is built from (esbuild's own list of inputs, offline, nothing written), so
 * the worker neither carries nor could send them.
 */
describe("the worker's import graph", () => {
  it('holds no reward-deactivation document', async () => {
    // Prepare
    const ours = await workerSourceFiles();

    // Act
    const deactivating = ours.filter((file) => /mutation (GiftCard|DiscountCode)Deactivate\b/.test(readFileSync(join(ROOT, file), 'utf8')));

    // Assess
    expect(ours).toEqual(expect.arrayContaining(['lib/adapters/shopify/transport.ts', 'lib/adapters/shopify/gift-cards.ts']));
    expect(deactivating).toEqual([]);
  });

  /**
   * The worker's bundle is held to 1.15x a skeleton with the same AWS SDK clients
   * (docs/PERFORMANCE.md §1), with little room to spare: nothing only another function runs may
   * ride in on a shared import. zod is ingest's, for PostHog's payload; the worker reads its own
   * queue message and settings without it.
   */
  it("holds no module only another function runs: zod, the webhook's parsers, the reconciler, the releaser's index reader, the code issuer, ops", async () => {
    // Prepare
    const othersOnly = /node_modules\/zod\/|^lib\/inbound\/|reconcil|lifecycle-index|issuer|^ops\//;

    // Act: what the bundle keeps (a shared module's unused exports are tree-shaken to 0 bytes).
    const kept = await workerBundleFiles();
    const strays = kept.filter((file) => othersOnly.test(file));

    // Assess
    expect(kept).toEqual(expect.arrayContaining(['lib/infra/wiring.ts', 'lib/adapters/posthog-query.ts']));
    expect(strays).toEqual([]);
  });
});
