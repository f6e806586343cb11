import type { Context } from 'aws-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { PermanentError } from '../domain/errors';
import { loadObservabilityConfig } from './config';

// At import, once per container: the logger is a module singleton, and these two are plain
// function environment (never in the secret), fixed for the container's life.
const { serviceName, metricsNamespace } = loadObservabilityConfig(process.env);

/** One logger and one metrics buffer per container, shared by every handler invocation. */
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ serviceName, namespace: metricsNamespace });

export { MetricUnit };

/** Publishes what this invocation recorded; an invocation that recorded nothing stays quiet. */
export function flushMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
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

export interface ScopedLogger {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

/**
 * The shared logger with keys (the correlation ids) added to every line. Not a child logger:
 * Powertools gives each child a fresh cold-start flag, so every record would claim a cold
 * start; and not appendKeys: records of one batch (and invocations sharing a process) run
 * concurrently and would swap keys.
 */
export function scopedLogger(keys: Record<string, unknown>): ScopedLogger {
  // A key not known yet (ingest before the body is read) is left out, not logged as undefined.
  const defined = Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== undefined));
  return {
    debug: (message, extra) => logger.debug(message, { ...defined, ...extra }),
    info: (message, extra) => logger.info(message, { ...defined, ...extra }),
    warn: (message, extra) => logger.warn(message, { ...defined, ...extra }),
    error: (message, extra) => logger.error(message, { ...defined, ...extra }),
  };
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
