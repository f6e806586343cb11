import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export const ROOT = join(__dirname, '..', '..');

/**
 * Our own source files the worker's bundle is built from: esbuild's list of inputs for
 * functions/worker.ts (offline, nothing written), relative to the repo root.
 */
export async function workerSourceFiles(): Promise<string[]> {
  const { metafile } = await build({
    entryPoints: [join(ROOT, 'functions', 'worker.ts')],
    bundle: true,
    platform: 'node',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return Object.keys(metafile.inputs).filter((file) => !file.includes('node_modules') && file.endsWith('.ts'));
}

/** The `XxxCommand` names constructed in those of `files` that import an SDK matching `sdk`. */
export function commandsSent(files: string[], sdk: RegExp): string[] {
  const commands = new Set<string>();
  for (const file of files) {
    const source = readFileSync(join(ROOT, file), 'utf8');
    if (!sdk.test(source)) continue;
    for (const [, command] of source.matchAll(/new (\w+?)Command\(/g)) commands.add(command!);
  }
  return [...commands];
}
