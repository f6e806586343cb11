import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** Running `npm start` and `npm run send-sample` as child processes, as a person runs them (fauxqs is ESM only, which jest cannot load). */
export const REPO = resolve(__dirname, '..', '..');
export const TSX = join(REPO, 'node_modules', '.bin', 'tsx');

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Starts `npm start` (local/start.ts) with `env`, handing its output to `onOutput` as it comes, and
 * resolves once its /health on `port` answers; a stack that does not answer in time is killed.
 */
export async function startLocalStack(env: NodeJS.ProcessEnv, port: number, onOutput: (text: string) => void): Promise<ChildProcess> {
  let out = '';
  const stack = spawn(TSX, ['local/start.ts'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const take = (chunk: Buffer) => {
    out += chunk.toString();
    onOutput(chunk.toString());
  };
  stack.stdout.on('data', take);
  stack.stderr.on('data', take);
  try {
    await waitFor(
      async () => {
        try {
          return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
        } catch {
          return false;
        }
      },
      `/health on port ${port}; output so far:\n${out}`,
      12_000,
    );
  } catch (error) {
    stack.kill('SIGKILL');
    throw error;
  }
  return stack;
}

/** Runs a command to completion and returns its exit code and output. */
export function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(TSX, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolveRun({ code, output }));
  });
}

export const count = (text: string, pattern: RegExp): number => (text.match(pattern) ?? []).length;
