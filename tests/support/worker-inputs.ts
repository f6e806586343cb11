import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export const ROOT = join(__dirname, '..', '..');

/**
 * The files the worker's bundle keeps code from (esbuild's own account for functions/worker.ts,
 * offline, nothing written), relative to the repo root: a module's unused exports are tree-shaken
 * to 0 bytes, so e.g. the other functions' wiring in lib/infra/wiring.ts and the adapters only they
 * call are not among them.
 */
export async function workerBundleFiles(): Promise<string[]> {
  const { metafile } = await build({
    entryPoints: [join(ROOT, 'functions', 'worker.ts')],
    bundle: true,
    platform: 'node',
    outdir: 'out',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const [bundle] = Object.values(metafile.outputs).filter((output) => output.entryPoint !== undefined);
  return Object.entries(bundle!.inputs)
    .filter(([, { bytesInOutput }]) => bytesInOutput > 0)
    .map(([file]) => file);
}

/** Our own source files among them. */
export async function workerSourceFiles(): Promise<string[]> {
  return (await workerBundleFiles()).filter((file) => !file.includes('node_modules') && file.endsWith('.ts'));
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
