import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * Revoking a reward is the operator's (ops review): its Shopify mutations stay out of the files
 * the worker's bundle is built from (esbuild's own list of inputs, offline, nothing written), so
 * the worker neither carries nor could send them.
 */
describe("the worker's import graph", () => {
  it('holds no reward-deactivation document', async () => {
    // Prepare
    const root = join(__dirname, '..', '..');

    // Act
    const { metafile } = await build({ entryPoints: [join(root, 'functions', 'worker.ts')], bundle: true, platform: 'node', write: false, metafile: true, logLevel: 'silent' });
    const ours = Object.keys(metafile.inputs).filter((file) => !file.includes('node_modules') && file.endsWith('.ts'));
    const deactivating = ours.filter((file) => /mutation (GiftCard|DiscountCode)Deactivate\b/.test(readFileSync(join(root, file), 'utf8')));

    // Assess
    expect(ours).toEqual(expect.arrayContaining(['lib/adapters/shopify/transport.ts', 'lib/adapters/shopify/gift-cards.ts']));
    expect(deactivating).toEqual([]);
  });
});
