/** Loading the deployed handlers into this process as Lambda would load each bundle. */
import { sep as pathSeparator } from 'node:path';

/** Drops the cached modules under `dirs`, so the next import loads its own copy (its own bundle on Lambda). */
export function forgetModulesUnder(dirs: string[]): void {
  for (const file of Object.keys(require.cache)) {
    if (dirs.some((dir) => file.startsWith(`${dir}${pathSeparator}`))) delete require.cache[file];
  }
}

/** The module's `handler`, whether the loader exposed it as a named export or on `default`. */
export function pickHandler<T>(mod: unknown, name: string): T {
  const m = mod as { handler?: unknown; default?: { handler?: unknown } };
  const handler = m.handler ?? m.default?.handler;
  if (typeof handler !== 'function') throw new Error(`${name} does not export a handler`);
  return handler as T;
}
