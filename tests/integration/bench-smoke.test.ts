import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EXPECTED_ROWS, type BenchResult } from '../../bench/report';

const ROOT = resolve(__dirname, '..', '..');

/** Runs `npm run bench -- --quick` as a user would (tsx), on the emulators jest's globalSetup started. */
function runQuickBench(json: string, markdown: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [require.resolve('tsx/cli'), 'bench/run.ts', '--quick', '--json', json, '--out', markdown], {
      cwd: ROOT,
      // TEST_SQS_ENDPOINT / TEST_DYNAMODB_ENDPOINT come through: the bench reuses those emulators.
      env: process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stderr }));
  });
}

/**
 * The bench's quick mode end to end. No timing assertions (they belong to the full run on a quiet
 * machine): only that it runs, produces every row, and loses no referral.
 */
describe('npm run bench -- --quick', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('measures every row and fulfils every referral exactly once', async () => {
    // Prepare
    const json = join(dir, 'result.json');
    const markdown = join(dir, 'PERFORMANCE.md');

    // Act
    const { code, stderr } = await runQuickBench(json, markdown);

    // Assess
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
    expect(result.mode).toBe('quick');
    expect(result.lost).toBe(0);
    const ids = result.rows.map((row) => row.id);
    for (const id of EXPECTED_ROWS) expect(ids).toContain(id);
    for (const row of result.rows) {
      expect(row.value).not.toBe('');
      expect(row.value).not.toContain('NaN');
    }
    expect(result.rows.find((row) => row.id === 'budget.lost')?.value).toBe('0');
    const doc = readFileSync(markdown, 'utf8');
    for (const row of result.rows) expect(doc).toContain(row.measure);
  }, 120_000);
});
