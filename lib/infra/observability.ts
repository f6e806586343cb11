import type { Context } from 'aws-lambda';
import { PermanentError } from '../domain/errors';
import { loadObservabilityConfig } from './config';

/*
 * Structured logs and CloudWatch metrics in the shapes Powertools for AWS Lambda writes them (its
 * PowertoolsLogFormatter's keys; its embedded metric format with the `service` dimension), read
 * from the settings it reads, so log queries, metric filters and alarms see the same lines. Not
 * imported: Powertools' Logger and Metrics were 30 KB of the worker bundle (docs/PERFORMANCE.md).
 */

// At import, once per container: plain function environment (never in the secret), fixed for the container's life.
const { serviceName, metricsNamespace } = loadObservabilityConfig(process.env);

const LEVELS = { TRACE: 6, DEBUG: 8, INFO: 12, WARN: 16, ERROR: 20, CRITICAL: 24, SILENT: 28 } as const;
type LevelName = keyof typeof LEVELS;

const isLevel = (name: string | undefined): name is LevelName => name !== undefined && name in LEVELS;

/** Powertools' boolean parsing of POWERTOOLS_DEV and POWERTOOLS_METRICS_DISABLED. */
function envFlag(name: string): boolean | undefined {
  const value = process.env[name]?.trim().toLowerCase();
  if (value === undefined || value === '') return undefined;
  return ['1', 'true', 'yes', 'on', 'y', 't'].includes(value);
}

const devMode = envFlag('POWERTOOLS_DEV') ?? false;

/**
 * Lambda's advanced logging controls (AWS_LAMBDA_LOG_LEVEL) win, as they drop anything below
 * their level anyway; then POWERTOOLS_LOG_LEVEL, else LOG_LEVEL; INFO when none is valid.
 */
const alcLevel = process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase();
const chosenLevel = (process.env.POWERTOOLS_LOG_LEVEL || process.env.LOG_LEVEL)?.toUpperCase();
const threshold = LEVELS[isLevel(alcLevel) ? alcLevel : isLevel(chosenLevel) ? chosenLevel : 'INFO'];

/** Keys every line carries; an extra attribute of the same name is dropped, as Powertools drops it. */
const RESERVED = new Set(['level', 'message', 'sampling_rate', 'service', 'timestamp']);

/** An error as Powertools logs it: name, where it was thrown, message, stack, cause, and its own fields. */
function formatError(error: Error): Record<string, unknown> {
  const { name, message, stack, cause, ...fields } = error as Error & Record<string, unknown>;
  const at = stack ? /\(([^()]*?):(\d+?):(\d+?)\)\\?$/m.exec(stack) : null;
  return {
    name,
    location: at ? `${at[1]}:${Number(at[2])}` : '',
    message,
    stack: devMode && stack ? stack.split('\n') : stack,
    cause: cause instanceof Error ? formatError(cause) : cause,
    ...fields,
  };
}

/** JSON.stringify's replacer: errors formatted, bigints as strings, a circular reference left out. */
function replacer(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function (this: unknown, _key, raw) {
    const value = raw instanceof Error ? formatError(raw) : raw;
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'object' && value !== null) {
      while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
      if (ancestors.includes(value)) return undefined;
      ancestors.push(value);
    }
    return value;
  };
}

type Extra = Record<string, unknown> | Error | string | undefined;

/** The invocation's Lambda context, on every line once addContext has run. */
let invocation: Record<string, unknown> = {};
let coldStart = process.env.AWS_LAMBDA_INITIALIZATION_TYPE !== 'provisioned-concurrency';

function write(level: LevelName, message: string, extras: Extra[]): void {
  if (LEVELS[level] < threshold) return;
  const line: Record<string, unknown> = {
    level,
    message,
    timestamp: new Date().toISOString(),
    service: serviceName,
    ...invocation,
    xray_trace_id: /Root=([^;]+)/.exec(process.env._X_AMZN_TRACE_ID ?? '')?.[1],
  };
  for (const extra of extras) {
    if (extra instanceof Error) line.error = extra;
    else if (typeof extra === 'string') line.extra = extra;
    else for (const [key, value] of Object.entries(extra ?? {})) if (!RESERVED.has(key)) line[key] = value;
  }
  for (const key of Object.keys(line)) if (line[key] === undefined || line[key] === null || line[key] === '') delete line[key];
  const text = `${JSON.stringify(line, replacer(), devMode ? 4 : 0)}\n`;
  (LEVELS[level] >= LEVELS.WARN ? process.stderr : process.stdout).write(text);
}

function writer(level: LevelName): (message: string, ...extra: Extra[]) => void {
  return (message, ...extra) => write(level, message, extra);
}

/** One JSON line per call on stdout (WARN and above on stderr), as Powertools' Logger writes them; one per container. */
export const logger = {
  /** The invocation's Lambda context on every later line; only the container's first invocation is a cold start. */
  addContext(context: Context): void {
    invocation = {
      cold_start: coldStart,
      function_arn: context.invokedFunctionArn,
      function_memory_size: context.memoryLimitInMB,
      function_name: context.functionName,
      function_request_id: context.awsRequestId,
    };
    coldStart = false;
  },
  debug: writer('DEBUG'),
  info: writer('INFO'),
  warn: writer('WARN'),
  error: writer('ERROR'),
};

export const MetricUnit = { Count: 'Count' } as const;
type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/** CloudWatch keeps at most 100 metrics in one EMF document, and 100 values of one metric. */
const EMF_LIMIT = 100;

/**
 * Metrics buffered for an invocation and printed as one CloudWatch embedded-metric-format line
 * on stdout, dimensioned by `service` (and what addDimension adds). A single metric prints as
 * soon as its one value is added, with the dimensions added before it.
 */
class EmfMetrics {
  private readonly values = new Map<string, { unit: Unit; values: number[] }>();
  private dimensions: Record<string, string> = {};
  // POWERTOOLS_METRICS_DISABLED decides when it is set; otherwise POWERTOOLS_DEV turns metrics off.
  private readonly disabled = envFlag('POWERTOOLS_METRICS_DISABLED') ?? devMode;

  constructor(private readonly single = false) {}

  addDimension(name: string, value: string): this {
    this.dimensions[name] = value;
    return this;
  }

  addMetric(name: string, unit: Unit, value: number): void {
    const stored = this.values.get(name) ?? { unit, values: [] };
    stored.values.push(value);
    this.values.set(name, stored);
    if (this.single || this.values.size >= EMF_LIMIT || stored.values.length >= EMF_LIMIT) this.publishStoredMetrics();
  }

  /** A metric of its own: its dimensions are not the invocation's. */
  singleMetric(): EmfMetrics {
    return new EmfMetrics(true);
  }

  hasStoredMetrics(): boolean {
    return this.values.size > 0;
  }

  publishStoredMetrics(): void {
    if (!this.disabled && this.values.size > 0) {
      const dimensions = { service: serviceName, ...this.dimensions };
      const document: Record<string, unknown> = {
        _aws: {
          Timestamp: Date.now(),
          CloudWatchMetrics: [
            {
              Namespace: metricsNamespace,
              Dimensions: [Object.keys(dimensions)],
              Metrics: [...this.values].map(([Name, { unit }]) => ({ Name, Unit: unit })),
            },
          ],
        },
        ...dimensions,
      };
      for (const [name, { values }] of this.values) document[name] = values.length === 1 ? values[0] : values;
      process.stdout.write(`${JSON.stringify(document)}\n`);
    }
    this.values.clear();
    this.dimensions = {};
  }
}

/** One metrics buffer per container, shared by every handler invocation. */
export const metrics = new EmfMetrics();

/** One data point of `name` in the invocation's buffer. */
export function count(name: string, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}

/** `value` of `name` in a metric of its own, dimensioned by `dimension` too (the invocation's buffer carries only `service`). */
export function countApart(name: string, dimension: string, dimensionValue: string, value = 1): void {
  metrics.singleMetric().addDimension(dimension, dimensionValue).addMetric(name, MetricUnit.Count, value);
}

/**
 * `value` of `name` in this function's own series, dimensioned by its name (Lambda names it
 * `<service>-<stage>-<function>`), so an alarm on it reads its own stage only.
 */
export function countForFunction(name: string, value: number, fallbackName: string): void {
  countApart(name, 'function', process.env.AWS_LAMBDA_FUNCTION_NAME ?? fallbackName, value);
}

/** Publishes what this invocation recorded; an invocation that recorded nothing stays quiet. */
export function flushMetrics(): void {
  metrics.publishStoredMetrics();
}

/**
 * An HTTP handler around `respond`: the Lambda context (cold start, request id, function name) on
 * every log line, and this invocation's metrics published however it ends.
 */
export function observedHttpHandler<E, R>(respond: (event: E) => Promise<R>): (event: E, context?: Context) => Promise<R> {
  return async (event, context) => {
    if (context) logger.addContext(context);
    try {
      return await respond(event);
    } finally {
      flushMetrics();
    }
  };
}

const LOG_METHODS = ['debug', 'info', 'warn', 'error'] as const;
export type ScopedLogger = Record<(typeof LOG_METHODS)[number], (message: string, extra?: Record<string, unknown>) => void>;

/**
 * The shared logger with keys (the correlation ids) added to every line. Not keys stored on the
 * logger: records of one batch (and invocations sharing a process) run concurrently and would
 * swap them.
 */
export function scopedLogger(keys: Record<string, unknown>): ScopedLogger {
  // A key not known yet (ingest before the body is read) is left out, not logged as undefined.
  const defined = Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== undefined));
  return Object.fromEntries(
    LOG_METHODS.map((method) => [
      method,
      (message: string, extra?: Record<string, unknown>) => logger[method](message, { ...defined, ...extra }),
    ]),
  ) as ScopedLogger;
}

/** Why a function could not be configured, for its log line: a settings error names the setting; anything else as it is. */
export function misconfiguredReason(error: unknown): string {
  return error instanceof PermanentError ? error.message : String(error);
}

/**
 * A handler built on its first call, not at import: a bad setting fails that call with the setting
 * named (logged as `<name> is misconfigured`, then rethrown for Lambda's Errors metric), and
 * importing the module (tests, the local stack) never needs the env. Built once per container.
 */
export function builtOnFirstCall<A extends unknown[], R>(
  name: string,
  build: () => (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  let built: ((...args: A) => Promise<R>) | undefined;
  return async (...args: A) => {
    try {
      built ??= build();
    } catch (error) {
      logger.error(`${name} is misconfigured`, { reason: misconfiguredReason(error) });
      throw error;
    }
    return built(...args);
  };
}
