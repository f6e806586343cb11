/**
 * What the handlers print (JSON log lines and EMF metrics, written to process.stdout and stderr by
 * lib/infra/observability.ts) is swallowed while a measurement runs and counted, because
 * CloudWatch Logs bills it by the byte. The bench's own progress goes through `progress()`.
 */
const originalStdout = process.stdout.write.bind(process.stdout);
const originalStderr = process.stderr.write.bind(process.stderr);

let capturing = 0;
let bytes = 0;

function counter(chunk: unknown): void {
  const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
  bytes += Buffer.byteLength(text);
}

/** Swallows and counts stdout/stderr until the returned function is called (nestable). */
export function captureOutput(): () => void {
  if (capturing++ === 0) {
    const swallow = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      counter(chunk);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') (done as () => void)();
      return true;
    }) as typeof process.stdout.write;
    process.stdout.write = swallow;
    process.stderr.write = swallow;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--capturing === 0) {
      process.stdout.write = originalStdout;
      process.stderr.write = originalStderr;
    }
  };
}

/** Bytes the handlers have printed so far (while captured). */
export function outputCounters(): { bytes: number } {
  return { bytes };
}

/** The bench's own progress lines, on stderr, even while the handlers' output is captured. */
export function progress(message: string): void {
  originalStderr(`[bench] ${message}\n`);
}

/** The bench's results, on stdout. */
export function print(text: string): void {
  originalStdout(text.endsWith('\n') ? text : `${text}\n`);
}
