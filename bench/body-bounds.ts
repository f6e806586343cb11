/**
 * 2b. Ingest's memory per body shape. A 6 MB body's cost is set by its shape, not its size:
 * ingest bounds nesting and elements before parsing (lib/inbound/json-bounds.ts). Each body is
 * answered by the deployed handler in a fresh process (bench/body-memory.ts), whose peak RSS then
 * belongs to that body alone: the worst-case shapes (6 MB of nested arrays, a million empty
 * objects) beside the reference, a 6 MB flat PostHog body (a person with 50,000 properties),
 * which is queued. The full run adds what a bare JSON.parse of the nested body costs (what ingest
 * did before the bound), as a note.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { load } from 'js-yaml';
import { MAX_BODY_BYTES } from '../lib/infra/config';
import { JSON_BOUNDS } from '../lib/inbound/json-bounds';
import { SERVERLESS_YML } from '../local/infra';
import type { BodyMemoryResult } from './body-memory';
import { progress } from './logs';
import type { SectionResult } from './report';
import { BenchStack, type Emulators } from './stack';
import { fmt } from './stats';

const SECTION = '2. Ingest';
const MB = 1024 * 1024;
const SAMPLE = readFileSync(resolvePath(__dirname, '..', 'local', 'sample-event.json'), 'utf8').trim();

/** PostHog's default body (local/sample-event.json) with `extra` as one more top-level key. */
const referralWith = (extra: string) => `${SAMPLE.slice(0, -1)},"extra":${extra}}`;
const room = (bytes: number) => bytes - Buffer.byteLength(referralWith('[]'));

/** The bodies, each `bytes` long (within a few bytes), built as text: no big object is made here. */
function bodies(bytes: number): Record<'flat' | 'nested' | 'objects', string> {
  const depth = Math.floor(room(bytes) / 2);
  const properties = 50_000;
  const value = 'x'.repeat(Math.max(1, Math.floor(room(bytes) / properties) - 30));
  const flatProperties = Array.from({ length: properties }, (_, i) => `"$initial_property_${String(i).padStart(5, '0')}":"${value}"`).join(
    ',',
  );
  return {
    flat: SAMPLE.replace(
      '"properties": { "email": "redeemer@example.com" }',
      `"properties":{"email":"redeemer@example.com",${flatProperties}}`,
    ),
    nested: referralWith(`${'['.repeat(depth)}${']'.repeat(depth)}`),
    objects: referralWith(`[{}${',{}'.repeat(Math.floor((room(bytes) - 2) / 3))}]`),
  };
}

function measure(args: string[]): Promise<BodyMemoryResult> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(resolvePath(__dirname, 'body-memory.ts'), args, {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    let result: BodyMemoryResult | undefined;
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('message', (message) => (result = message as BodyMemoryResult));
    child.on('error', reject);
    child.on('exit', (code) =>
      result && code === 0 ? resolvePromise(result) : reject(new Error(`body-memory ${args[0]} exited ${code}: ${stderr}`)),
    );
  });
}

const mb = (bytes: number) => `${fmt(bytes / MB, 1)} MB`;
const answer = (result: BodyMemoryResult) => `${result.status}${result.code ? ` ${result.code}` : ''}`;

export async function benchBodyBounds(emulators: Emulators, options: { quick: boolean }): Promise<SectionResult> {
  const stack = await BenchStack.start(emulators);
  const dir = mkdtempSync(join(tmpdir(), 'bench-bodies-'));
  try {
    const size = MAX_BODY_BYTES;
    const files: Record<string, string> = {};
    for (const [name, text] of Object.entries({ ...bodies(size), small: SAMPLE })) {
      files[name] = join(dir, `${name}.json`);
      writeFileSync(files[name], text);
    }
    const memorySize = Number(
      (load(readFileSync(SERVERLESS_YML, 'utf8')) as { functions: { ingest: { memorySize: number } } }).functions.ingest.memorySize,
    );
    const run = (name: string) => measure([files[name]!, stack.resources.queueUrl, emulators.sqsEndpoint]);

    progress(`ingest bodies: 6 MB flat, nested and many-objects bodies, each in a fresh process`);
    const flat = await run('flat');
    const nested = await run('nested');
    const objects = await run('objects');
    const unbounded = options.quick ? undefined : await measure(['--parse-only', files.nested!]);

    const peak = Math.max(flat.peakRss, nested.peakRss, objects.peakRss);
    const reference = `6 MB flat PostHog body, 50,000 person properties (answered ${answer(flat)}): ${mb(flat.peakRssGrowth)}`;
    return {
      rows: [
        {
          id: 'ingest.body.nested',
          section: SECTION,
          measure: `peak RSS growth answering 6 MB of nested arrays (answered ${answer(nested)})`,
          value: mb(nested.peakRssGrowth),
          reference,
          ratio: nested.peakRssGrowth / flat.peakRssGrowth,
          target: '≤ 1',
          holds: nested.peakRssGrowth <= flat.peakRssGrowth,
        },
        {
          id: 'ingest.body.objects',
          section: SECTION,
          measure: `peak RSS growth answering a million empty objects in 6 MB (answered ${answer(objects)})`,
          value: mb(objects.peakRssGrowth),
          reference,
          ratio: objects.peakRssGrowth / flat.peakRssGrowth,
          target: '≤ 1',
          holds: objects.peakRssGrowth <= flat.peakRssGrowth,
        },
        {
          id: 'ingest.body.peak',
          section: SECTION,
          measure: 'peak RSS of the whole ingest process, worst of the three 6 MB bodies',
          value: mb(peak),
          reference: `ingest memorySize (serverless.yml): ${memorySize} MB`,
          ratio: peak / (memorySize * MB),
          target: '≤ 0.75',
          holds: peak <= 0.75 * memorySize * MB,
        },
      ],
      notes: [
        `Bounds: depth ${JSON_BOUNDS.maxDepth}, ${JSON_BOUNDS.maxElements.toLocaleString('en-US')} elements, checked by one pass over the text before JSON.parse. Time to answer: flat ${fmt(flat.ms, 0)} ms, nested ${fmt(nested.ms, 0)} ms, objects ${fmt(objects.ms, 0)} ms.`,
        'Peak RSS growth = getrusage ru_maxrss after answering minus RSS just before, in a fresh process per body (module load, SDK client and connection warmed on a small body first, then two GCs). It includes the 6 MB body decoded from the event (a Buffer and a string) in every case. The whole process includes Node, the modules and tsx (TypeScript compiled on load, which the deployed bundle does not carry: an overestimate), as a Lambda container holds its runtime; Lambda bills and stops a function on the same resident memory.',
        ...(unbounded
          ? [
              `Unbounded, as before the bound: a bare JSON.parse of the nested body grows RSS by ${mb(unbounded.peakRssGrowth)} and takes ${fmt(unbounded.ms, 0)} ms (peak ${mb(unbounded.peakRss)} against ${memorySize} MB).`,
            ]
          : []),
      ],
      data: {
        flatPeakRssGrowth: flat.peakRssGrowth,
        nestedPeakRssGrowth: nested.peakRssGrowth,
        objectsPeakRssGrowth: objects.peakRssGrowth,
        peakRss: peak,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await stack.stop();
  }
}
