/**
 * `npm run bench` — every figure beside a reference measured in the same run; writes the table
 * into docs/PERFORMANCE.md (between the bench markers, keeping the prose around it).
 *
 *   npm run bench                      full run (~15 min: the 1,000-referral runs and the time-scaled plans dominate)
 *   npm run bench -- --quick           seconds: fewer referrals, a small fast bucket; prints only
 *   options: --out <file.md>  --json <file.json>  --only bundle,ingest,budget,latency,cost,reward
 */
import './env';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve as resolvePath } from 'node:path';
import { benchBodyBounds } from './body-bounds';
import { benchBudget } from './budget';
import { benchBundles } from './bundle';
import { benchCost } from './cost';
import { benchIngest } from './ingest';
import { benchLatency } from './latency';
import { benchReward } from './reward';
import { print, progress } from './logs';
import { replaceBetweenMarkers } from './markers';
import { describeRun, renderTable, type BenchResult, type SectionResult } from './report';
import { useEmulators } from './stack';

const SECTIONS = ['bundle', 'ingest', 'budget', 'latency', 'cost', 'reward'] as const;
type Section = (typeof SECTIONS)[number];

export const DOC = resolvePath(__dirname, '..', 'docs', 'PERFORMANCE.md');
export const BEGIN = '<!-- bench:begin (written by `npm run bench`; edit outside these markers) -->';
export const END = '<!-- bench:end -->';

interface Args {
  quick: boolean;
  out?: string;
  json?: string;
  only: Set<Section>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: new Set(SECTIONS) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') args.quick = true;
    else if (arg === '--out') args.out = argv[++i];
    else if (arg === '--json') args.json = argv[++i];
    else if (arg === '--only') {
      const wanted = (argv[++i] ?? '').split(',').filter(Boolean);
      for (const name of wanted) if (!SECTIONS.includes(name as Section)) throw new Error(`--only: unknown section ${name}`);
      args.only = new Set(wanted as Section[]);
    } else throw new Error(`unknown argument ${arg} (try --quick, --out, --json, --only)`);
  }
  return args;
}

/** Replaces the text between the markers, or writes a new document around the table. */
export function writeDoc(file: string, table: string): void {
  const body = `\n${table.trim()}\n`;
  const block = `${BEGIN}${body}${END}`;
  let text: string;
  if (existsSync(file)) {
    const current = readFileSync(file, 'utf8');
    text = replaceBetweenMarkers(current, BEGIN, END, body) ?? `${current.trimEnd()}\n\n${block}\n`;
  } else {
    text = `# Performance\n\n${block}\n`;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

export async function runBench(args: Args): Promise<BenchResult> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const sections: SectionResult[] = [];
  const byName: Partial<Record<Section, SectionResult>> = {};
  const add = (name: Section, result: SectionResult) => {
    sections.push(result);
    byName[name] = result;
  };

  if (args.only.has('bundle')) add('bundle', await benchBundles({ quick: args.quick }));
  const needsStack = ['ingest', 'budget', 'latency', 'cost', 'reward'].some((name) => args.only.has(name as Section));
  const emulators = needsStack ? await useEmulators() : undefined;
  try {
    if (emulators && (args.only.has('ingest') || args.only.has('cost'))) add('ingest', await benchIngest(emulators, { quick: args.quick }));
    if (emulators && args.only.has('ingest')) sections.push(await benchBodyBounds(emulators, { quick: args.quick }));
    if (emulators && (args.only.has('budget') || args.only.has('cost'))) add('budget', await benchBudget(emulators, { quick: args.quick }));
    if (emulators && (args.only.has('latency') || args.only.has('cost')))
      add('latency', await benchLatency(emulators, { quick: args.quick }));
    if (emulators && args.only.has('reward')) add('reward', await benchReward(emulators, { quick: args.quick }));
  } finally {
    await emulators?.stop();
  }
  if (args.only.has('cost')) {
    const ingest = byName.ingest?.data ?? {};
    const budget = byName.budget?.data ?? {};
    const latency = byName.latency?.data ?? {};
    add(
      'cost',
      benchCost({
        ingestMs: ingest.p50,
        workerMsTrickle: latency.workerMsPerReferral,
        workerMsBacklog: budget.workerMsPerReferralBacklog,
        writeUnits: latency.writeUnitsPerReferral,
        readUnits: latency.readUnitsPerReferral,
        sqsRequests: latency.sqsRequestsPerReferral,
        logBytes: latency.logBytesPerReferral,
      }),
    );
  }

  const notes: Record<string, string[]> = {};
  for (const section of sections) {
    const title = section.rows[0]?.section ?? 'Notes';
    notes[title] = [...(notes[title] ?? []), ...section.notes];
  }
  return {
    mode: args.quick ? 'quick' : 'full',
    startedAt,
    durationMs: Date.now() - started,
    node: process.versions.node,
    cpus: cpus().length,
    rows: sections.flatMap((section) => section.rows),
    notes,
    lost: sections.reduce((sum, section) => sum + (section.lost ?? 0), 0),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  progress(`${args.quick ? 'quick' : 'full'} run: ${[...args.only].join(', ')}`);
  const result = await runBench(args);
  const table = `_${describeRun(result)}._\n\n${renderTable(result)}`;
  print(table);
  const out = args.out ?? (args.quick || args.only.size < SECTIONS.length ? undefined : DOC);
  if (out) {
    writeDoc(resolvePath(out), table);
    progress(`table written to ${out}`);
  }
  if (args.json) writeFileSync(resolvePath(args.json), JSON.stringify(result, null, 2));
  progress(`done in ${(result.durationMs / 1000).toFixed(1)} s; referrals lost: ${result.lost}`);
  // Undici keep-alive sockets and SDK agents would otherwise hold the process for a few seconds.
  process.exit(result.lost > 0 ? 1 : 0);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  });
}
