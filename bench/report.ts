/** One line of the results table: a measured value beside the reference measured in the same run. */
export interface Row {
  /** Stable key (the smoke test checks every one is present). */
  id: string;
  section: string;
  measure: string;
  value: string;
  reference: string;
  /** value ÷ reference, the figure the target is about. */
  ratio?: number;
  /** e.g. "≤ 1.15" (applies to the ratio unless the row says otherwise). */
  target?: string;
  holds?: boolean;
}

export interface SectionResult {
  rows: Row[];
  /** Short lines printed under the table: how a figure was computed, what it depends on. */
  notes: string[];
  /** Referrals not fulfilled exactly once (must be 0). */
  lost?: number;
  /** Raw figures other sections use (the cost model). */
  data?: Record<string, number>;
}

export interface BenchResult {
  mode: 'full' | 'quick';
  startedAt: string;
  durationMs: number;
  node: string;
  cpus: number;
  rows: Row[];
  notes: Record<string, string[]>;
  lost: number;
}

/** The ids every run must produce, in order. */
export const EXPECTED_ROWS = [
  'bundle.ingest.bytes',
  'bundle.worker.bytes',
  'bundle.ingest.load',
  'bundle.worker.load',
  'ingest.latency.p50',
  'ingest.latency.p99',
  'ingest.http.rps',
  'ingest.body.nested',
  'ingest.body.objects',
  'ingest.body.peak',
  'budget.rate',
  'budget.steady',
  'budget.throttled',
  'budget.unpaced',
  'budget.lost',
  'budget.rate.containers',
  'latency.referral',
  'latency.keepalive',
  'cost.aws',
  'cost.zapier',
  'reward.idle.p50',
  'reward.idle.p99',
  'reward.contention.p50',
  'reward.contention.p99',
  'reward.budget.standard',
  'reward.budget.advanced',
  'reward.burst.p50',
  'reward.burst.p99',
  'reward.budget.plus',
  'reward.budget.commerce_components',
  'reward.budget.throttled',
  'reward.outage.p50',
  'reward.outage.last',
] as const;

const ratioText = (ratio: number | undefined): string => {
  if (ratio === undefined || !Number.isFinite(ratio)) return '';
  return ratio !== 0 && Math.abs(ratio) < 0.01 ? `${ratio.toPrecision(2)}×` : `${ratio.toFixed(3)}×`;
};
const holdsText = (row: Row): string => (row.holds === undefined ? '' : row.holds ? 'yes' : '**no**');

/** The markdown table (and notes) for docs/PERFORMANCE.md and the console. */
export function renderTable(result: BenchResult): string {
  const lines: string[] = [];
  lines.push('| # | Measure | Value | Reference (same run) | Ratio | Target | Holds |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const row of result.rows) {
    const cells = [row.section, row.measure, row.value, row.reference, ratioText(row.ratio), row.target ?? '', holdsText(row)];
    lines.push(`| ${cells.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  lines.push('');
  for (const [section, notes] of Object.entries(result.notes)) {
    if (notes.length === 0) continue;
    lines.push(`**${section}**`);
    lines.push('');
    for (const note of notes) lines.push(`- ${note}`);
    lines.push('');
  }
  return lines.join('\n');
}

export function describeRun(result: BenchResult): string {
  const seconds = (result.durationMs / 1000).toFixed(1);
  return `${result.mode} run, ${result.startedAt}, ${seconds} s, Node ${result.node}, ${result.cpus} CPUs; referrals lost: ${result.lost}`;
}
