import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const HELPER = join(__dirname, '..', '..', 'deploy', 'worker-concurrency.js');

/**
 * deploy/worker-concurrency.js as osls calls it while reading serverless.yml (in a plain Node
 * process: it loads the TypeScript with tsx, which jest's module loader does not host): the
 * stage's SHOPIFY_RESTORE_RATE and the event source's batch size in, the SQS maximumConcurrency out.
 */
function concurrencyFor(restoreRate: string): string {
  const script = `
    const values = { 'param:SHOPIFY_RESTORE_RATE': ${JSON.stringify(restoreRate)}, 'self:custom.settings.batchSize': 10 };
    require(${JSON.stringify(HELPER)})
      .maximumConcurrency({ resolveVariable: async (name) => values[name] })
      .then((n) => process.stdout.write(String(n)), (error) => process.stdout.write('error: ' + error.message));
  `;
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
}

describe('deploy/worker-concurrency.js', () => {
  it.each([
    ['standard', '2'],
    ['plus', '7'],
    ['1000', '7'],
    ['commerce_components', '14'],
  ])('gives a stage whose SHOPIFY_RESTORE_RATE is %s %s containers', (rate, containers) => {
    // Act
    const concurrency = concurrencyFor(rate);

    // Assess
    expect(concurrency).toBe(containers);
  });

  it('stops the deploy, naming the setting, on a restore rate it cannot read', () => {
    // Act
    const answer = concurrencyFor('platinum');

    // Assess
    expect(answer).toMatch(/^error: SHOPIFY_RESTORE_RATE must be/);
  });
});
