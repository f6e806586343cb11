/**
 * `npm run soak`: the chaos soak (soak/chaos.ts) against in-process emulators.
 *
 *   npm run soak                          # 2,000 referrals, seed 1
 *   npm run soak -- --events 500 --seed 7
 *   npm run soak -- --write-docs          # also rewrite the results in docs/RELIABILITY.md
 *
 * Other flags: --pollers N, --fault-rate R, --crash-rate R, --duplicate-rate R, --json FILE.
 * Exits 1 when any referral was lost or doubled, or another invariant failed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { replaceBetweenMarkers } from '../bench/markers';
import type { SoakReport } from './chaos';
import type { EmulatorsModule } from '../local/emulators-types';

export const RELIABILITY_MD = resolvePath(__dirname, '..', 'docs', 'RELIABILITY.md');
const RESULTS_START = '<!-- soak-results:start -->';
const RESULTS_END = '<!-- soak-results:end -->';

interface Args {
  events: number;
  seed: number;
  pollers?: number;
  faultRate?: number;
  crashRate?: number;
  duplicateRate?: number;
  writeDocs: boolean;
  json?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { events: 2000, seed: 1, writeDocs: false };
  const number = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n)) throw new Error(`${flag} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--events':
        args.events = number(flag, value());
        break;
      case '--seed':
        args.seed = number(flag, value());
        break;
      case '--pollers':
        args.pollers = number(flag, value());
        break;
      case '--fault-rate':
        args.faultRate = number(flag, value());
        break;
      case '--crash-rate':
        args.crashRate = number(flag, value());
        break;
      case '--duplicate-rate':
        args.duplicateRate = number(flag, value());
        break;
      case '--write-docs':
        args.writeDocs = true;
        break;
      case '--json':
        args.json = value();
        break;
      case '--help':
      case '-h':
        console.log(
          'usage: npm run soak -- [--events 2000] [--seed 1] [--pollers 3] [--fault-rate 0.2] [--crash-rate 0.05] [--duplicate-rate 0.25] [--write-docs] [--json FILE]',
        );
        return process.exit(0);
      default:
        throw new Error(`unknown argument ${argv[i]} (try --help)`);
    }
  }
  return args;
}

/** Replaces what sits between the results markers in docs/RELIABILITY.md. */
export function writeResults(report: SoakReport, table: string, command: string): void {
  const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const body = [
    '',
    '',
    `Last full run: \`${command}\`, ${when}, Node ${process.version}, ${cpus().length} cores, ` +
      `${(report.durationMs / 1000).toFixed(0)} s.`,
    '',
    table,
    '',
    '',
  ].join('\n');
  const text = replaceBetweenMarkers(readFileSync(RELIABILITY_MD, 'utf8'), RESULTS_START, RESULTS_END, body);
  if (text === undefined) throw new Error(`${RELIABILITY_MD} has no ${RESULTS_START} … ${RESULTS_END} section`);
  writeFileSync(RELIABILITY_MD, text);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));

  // Everything the handlers and SDK clients read at import time, before anything imports them.
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  process.env.AWS_REGION = 'us-east-1';
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

  // fauxqs is ESM only: a computed specifier keeps this a native import() in this CommonJS file.
  const emulatorsModule = '../local/emulators.mjs';
  const { startEmulators } = (await import(emulatorsModule)) as EmulatorsModule;
  const emulators = await startEmulators();
  process.env.TEST_SQS_ENDPOINT = emulators.sqsEndpoint;
  process.env.TEST_DYNAMODB_ENDPOINT = emulators.dynamoEndpoint;

  try {
    const { runChaosSoak, formatReport } = await import('./chaos');
    const report = await runChaosSoak({
      events: args.events,
      seed: args.seed,
      pollers: args.pollers,
      faultRate: args.faultRate,
      crashRate: args.crashRate,
      duplicateRate: args.duplicateRate,
      log: (line) => console.log(line),
    });
    const table = formatReport(report);
    console.log(`\n${table}\n`);
    for (const problem of report.problems.slice(0, 20)) {
      console.log(`✗ ${problem.eventId}: ${problem.problem}`);
      for (const line of problem.trace) console.log(`    ${line}`);
    }
    if (report.problems.length > 20) console.log(`… and ${report.problems.length - 20} more problems`);
    if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
    if (args.writeDocs) {
      const flags = [`--events ${args.events}`, `--seed ${args.seed}`];
      if (args.pollers !== undefined) flags.push(`--pollers ${args.pollers}`);
      if (args.faultRate !== undefined) flags.push(`--fault-rate ${args.faultRate}`);
      if (args.crashRate !== undefined) flags.push(`--crash-rate ${args.crashRate}`);
      if (args.duplicateRate !== undefined) flags.push(`--duplicate-rate ${args.duplicateRate}`);
      writeResults(report, table, `npm run soak -- ${flags.join(' ')}`);
      console.log(`results written to ${RELIABILITY_MD}`);
    }
    return report.lost > 0 || report.doubled > 0 || !report.ok ? 1 : 0;
  } finally {
    await emulators.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
