import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const TOP = /^(lib|functions|ops|docs|tests|soak|bench|local|deploy)\//;

/** Every `path` in backticks in a doc that names a file or folder of this repository. */
function namedPaths(doc: string): string[] {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const tokens = [...text.matchAll(/`([^`\s]+)`/g)].map((match) => match[1]);
  return [...new Set(tokens.filter((token) => TOP.test(token)).map((token) => token.replace(/\/\*$/, '/')))];
}

describe('docs name only paths that exist', () => {
  it.each(['docs/ARCHITECTURE.md', 'README.md', 'docs/SETUP.md'])('%s', (doc) => {
    // Prepare
    const paths = namedPaths(doc);

    // Act
    const missing = paths.filter((path) => !existsSync(join(ROOT, path)));

    // Assess
    expect(paths.length).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });
});
