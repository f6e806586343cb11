/**
 * Import FIRST in a test file that reads the CloudWatch embedded metric format (EMF) lines a
 * handler prints: lib/infra/observability.ts reads POWERTOOLS_METRICS_DISABLED at import. Jest
 * gives each test file its own modules, so only that file is affected.
 */
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
process.env.AWS_LAMBDA_FUNCTION_NAME = 'referral-rewards-test-ingest';

export const FUNCTION_NAME = process.env.AWS_LAMBDA_FUNCTION_NAME;

/** One metric as CloudWatch would extract it from an EMF line. */
export interface EmittedMetric {
  namespace: string;
  name: string;
  /** The dimension names and their values, of the one dimension set each EMF line has. */
  dimensions: Record<string, string>;
  value: unknown;
}

/** Runs `act` and returns every metric printed as EMF on stdout meanwhile (the lines are swallowed). */
export async function emittedMetrics(act: () => Promise<unknown>): Promise<EmittedMetric[]> {
  const lines: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.includes('"_aws"')) {
      lines.push(...text.split('\n').filter((line) => line.includes('"_aws"')));
      const done = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      done?.();
      return true;
    }
    return original(chunk as string, ...(rest as []));
  }) as typeof process.stdout.write;
  try {
    await act();
  } finally {
    process.stdout.write = original;
  }
  return lines.flatMap((line) => {
    const record = JSON.parse(line) as Record<string, any>;
    return (record._aws.CloudWatchMetrics as { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[]).flatMap(
      (directive) =>
        directive.Metrics.map(({ Name }) => ({
          namespace: directive.Namespace,
          name: Name,
          dimensions: Object.fromEntries((directive.Dimensions[0] ?? []).map((key) => [key, String(record[key])])),
          value: record[Name],
        })),
    );
  });
}
