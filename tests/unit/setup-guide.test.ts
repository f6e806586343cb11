import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';

// docs/SETUP.md step 1 gives app developers the few lines that sign a referral. These tests run
// exactly those lines, as the guide prints them, against the guide's test vector: a snippet that
// drifts from the signing rule fails here instead of in every app that copied it.

const GUIDE = readFileSync(join(__dirname, '..', '..', 'docs', 'SETUP.md'), 'utf8');

const VECTOR = {
  key: 'test-referral-signing-key-0123456789abcdef',
  event: 'referral redeemed',
  referrer: 'alice@example.com',
  redeemer: 'bob@example.com',
  signature: '6zWd_ENcNzHUeWeOrP4HSepSE7f9ms1BbDLmEliUh_Y',
};

/** The fenced block right after `<!-- signing-snippet:<language> -->`. */
function markedSnippet(language: 'node' | 'python'): string {
  const match = new RegExp(`<!-- signing-snippet:${language} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\\n\`\`\``).exec(GUIDE);
  if (!match) throw new Error(`docs/SETUP.md has no fenced block marked <!-- signing-snippet:${language} -->`);
  return match[1];
}

type NodeSigner = (key: string, referral: { event: string; referrer: string; redeemer: string }) => string;

function nodeSigner(): NodeSigner {
  return runInNewContext(`${markedSnippet('node')}\n;referralSignature`, { require }) as NodeSigner;
}

const hasPython = spawnSync('python3', ['--version'], { encoding: 'utf8' }).status === 0;

function pythonSignature(event: string, referrer: string, redeemer: string): string {
  const call = `print(referral_signature(${JSON.stringify(VECTOR.key)}, ${JSON.stringify(event)}, ${JSON.stringify(referrer)}, ${JSON.stringify(redeemer)}))`;
  const run = spawnSync('python3', ['-c', `${markedSnippet('python')}\n${call}`], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python3 failed: ${run.stderr}`);
  return run.stdout.trim();
}

describe('docs/SETUP.md signing snippets', () => {
  it('states the test vector the snippets are checked against', () => {
    // Prepare
    const stated = [VECTOR.key, VECTOR.referrer, VECTOR.redeemer, VECTOR.signature];

    // Act
    const missing = stated.filter((value) => !GUIDE.includes(value));

    // Assess
    expect(missing).toEqual([]);
  });

  it('the Node snippet signs the test vector', () => {
    // Prepare
    const sign = nodeSigner();

    // Act
    const signature = sign(VECTOR.key, { event: VECTOR.event, referrer: VECTOR.referrer, redeemer: VECTOR.redeemer });

    // Assess
    expect(signature).toBe(VECTOR.signature);
  });

  it('the Node snippet trims and lowercases each part, as the worker does', () => {
    // Prepare
    const sign = nodeSigner();

    // Act
    const signature = sign(VECTOR.key, { event: ' Referral Redeemed', referrer: 'Alice@Example.com ', redeemer: ' BOB@example.com' });

    // Assess
    expect(signature).toBe(VECTOR.signature);
  });

  (hasPython ? it : it.skip)('the Python snippet signs the test vector (skipped without python3)', () => {
    // Prepare
    const { event, referrer, redeemer } = VECTOR;

    // Act
    const signature = pythonSignature(event, referrer, redeemer);

    // Assess
    expect(signature).toBe(VECTOR.signature);
  });

  (hasPython ? it : it.skip)('the Python snippet trims and lowercases each part (skipped without python3)', () => {
    // Prepare
    const [event, referrer, redeemer] = [' Referral Redeemed', 'Alice@Example.com ', ' BOB@example.com'];

    // Act
    const signature = pythonSignature(event, referrer, redeemer);

    // Assess
    expect(signature).toBe(VECTOR.signature);
  });
});
