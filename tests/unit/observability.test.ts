/**
 * The log lines and metrics the deployed functions print, in the shapes Powertools for AWS Lambda
 * writes (the log queries, metric filters and alarms in serverless.yml and docs/OPERATIONS.md read
 * these keys), and the settings that govern them. observability.ts reads its settings at import, so
 * each test imports a fresh copy under the environment it sets.
 */
import type { Context } from 'aws-lambda';

type Observability = typeof import('../../lib/infra/observability');

const CONTEXT = {
  functionName: 'referral-rewards-prod-worker',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:referral-rewards-prod-worker',
  memoryLimitInMB: '512',
  awsRequestId: 'request-1',
} as Context;

const SETTINGS = [
  'POWERTOOLS_LOG_LEVEL',
  'LOG_LEVEL',
  'AWS_LAMBDA_LOG_LEVEL',
  'POWERTOOLS_METRICS_DISABLED',
  'POWERTOOLS_DEV',
  'POWERTOOLS_SERVICE_NAME',
  'POWERTOOLS_METRICS_NAMESPACE',
  '_X_AMZN_TRACE_ID',
];
const saved = Object.fromEntries(SETTINGS.map((key) => [key, process.env[key]]));

afterEach(() => {
  for (const key of SETTINGS) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
  jest.restoreAllMocks();
});

/** observability.ts imported afresh with `env` set (everything else of SETTINGS unset). */
function load(env: Record<string, string>): Observability {
  for (const key of SETTINGS) delete process.env[key];
  Object.assign(process.env, env);
  let loaded: Observability | undefined;
  jest.isolateModules(() => {
    loaded = jest.requireActual<Observability>('../../lib/infra/observability');
  });
  return loaded!;
}

/** What `act` writes to stdout and stderr, parsed line by line. */
function printed(act: () => void): { stdout: Record<string, any>[]; stderr: Record<string, any>[] } {
  const out = { stdout: [] as string[], stderr: [] as string[] };
  for (const name of ['stdout', 'stderr'] as const) {
    jest.spyOn(process[name], 'write').mockImplementation((chunk: string | Uint8Array) => {
      out[name].push(String(chunk));
      return true;
    });
  }
  act();
  jest.restoreAllMocks();
  const parse = (chunks: string[]) => chunks.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((line) => JSON.parse(line));
  return { stdout: parse(out.stdout), stderr: parse(out.stderr) };
}

describe('log lines', () => {
  it("carry Powertools' keys, the Lambda context and the caller's attributes, on stdout", () => {
    // Prepare
    const { logger } = load({
      POWERTOOLS_SERVICE_NAME: 'referral-rewards-prod',
      _X_AMZN_TRACE_ID: 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
    });
    logger.addContext(CONTEXT);

    // Act
    const { stdout, stderr } = printed(() => logger.info('referral queued', { eventId: 'evt-1', absent: undefined, empty: '' }));

    // Assess
    expect(stderr).toEqual([]);
    expect(stdout).toEqual([
      {
        level: 'INFO',
        message: 'referral queued',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        service: 'referral-rewards-prod',
        cold_start: true,
        function_arn: CONTEXT.invokedFunctionArn,
        function_memory_size: '512',
        function_name: CONTEXT.functionName,
        function_request_id: 'request-1',
        xray_trace_id: '1-5759e988-bd862e3fe1be46a994272793',
        eventId: 'evt-1',
      },
    ]);
  });

  it('call only the first invocation of a container a cold start', () => {
    // Prepare
    const { logger } = load({});
    logger.addContext(CONTEXT);
    logger.addContext({ ...CONTEXT, awsRequestId: 'request-2' });

    // Act
    const { stdout } = printed(() => logger.info('second invocation'));

    // Assess
    expect(stdout[0]).toMatchObject({ cold_start: false, function_request_id: 'request-2' });
  });

  it('go to stderr from WARN up', () => {
    // Prepare
    const { logger } = load({});

    // Act
    const { stdout, stderr } = printed(() => {
      logger.warn('slow');
      logger.error('failed');
    });

    // Assess
    expect(stdout).toEqual([]);
    expect(stderr.map((line) => line.level)).toEqual(['WARN', 'ERROR']);
  });

  it('never let an attribute overwrite the level, message, service or timestamp', () => {
    // Prepare
    const { logger } = load({ POWERTOOLS_SERVICE_NAME: 'referral-rewards' });

    // Act
    const { stdout } = printed(() => logger.info('real', { level: 'ERROR', message: 'forged', service: 'other', timestamp: 'x', kept: 1 }));

    // Assess
    expect(stdout[0]).toMatchObject({ level: 'INFO', message: 'real', service: 'referral-rewards', kept: 1 });
    expect(stdout[0].timestamp).not.toBe('x');
  });

  it('show an error with its name, message, where it was thrown, its stack, cause and own fields', () => {
    // Prepare
    const { logger } = load({});
    const cause = new TypeError('socket hang up');
    const error = Object.assign(new Error('Shopify did not answer', { cause }), { name: 'RetryableError', outage: true });

    // Act
    const { stderr } = printed(() => logger.error('step failed', { error }));

    // Assess
    expect(stderr[0].error).toEqual({
      name: 'RetryableError',
      message: 'Shopify did not answer',
      location: expect.stringMatching(/observability\.test\.ts:\d+$/),
      stack: expect.stringContaining('Shopify did not answer'),
      cause: expect.objectContaining({ name: 'TypeError', message: 'socket hang up' }),
      outage: true,
    });
  });

  it('survive a circular attribute and a bigint', () => {
    // Prepare
    const { logger } = load({});
    const loop: Record<string, unknown> = { id: 'a' };
    loop.self = loop;

    // Act
    const { stdout } = printed(() => logger.info('odd values', { loop, big: BigInt(2) ** BigInt(64) }));

    // Assess
    expect(stdout[0]).toMatchObject({ loop: { id: 'a' }, big: '18446744073709551616' });
  });

  it.each([
    [{ POWERTOOLS_LOG_LEVEL: 'WARN' }, ['WARN', 'ERROR']],
    [{ LOG_LEVEL: 'ERROR' }, ['ERROR']],
    [{ POWERTOOLS_LOG_LEVEL: 'DEBUG', LOG_LEVEL: 'ERROR' }, ['DEBUG', 'INFO', 'WARN', 'ERROR']],
    [{ POWERTOOLS_LOG_LEVEL: 'DEBUG', AWS_LAMBDA_LOG_LEVEL: 'WARN' }, ['WARN', 'ERROR']],
    [{ POWERTOOLS_LOG_LEVEL: 'SILENT' }, []],
    [{ POWERTOOLS_LOG_LEVEL: 'chatty' }, ['INFO', 'WARN', 'ERROR']],
    [{}, ['INFO', 'WARN', 'ERROR']],
  ])('under %j print %j', (env, levels) => {
    // Prepare
    const { logger } = load(env as Record<string, string>);

    // Act
    const { stdout, stderr } = printed(() => {
      logger.debug('d');
      logger.info('i');
      logger.warn('w');
      logger.error('e');
    });

    // Assess
    expect([...stdout, ...stderr].map((line) => line.level)).toEqual(levels);
  });
});

describe('metrics', () => {
  it('print one embedded-metric-format line per flush, dimensioned by service, a repeated metric as its values', () => {
    // Prepare
    const { metrics, MetricUnit, flushMetrics } = load({
      POWERTOOLS_METRICS_DISABLED: 'false',
      POWERTOOLS_SERVICE_NAME: 'referral-rewards-prod',
      POWERTOOLS_METRICS_NAMESPACE: 'Rewards',
    });
    metrics.addMetric('RewardsIssued', MetricUnit.Count, 2);
    metrics.addMetric('RecordDeadLettered', MetricUnit.Count, 1);
    metrics.addMetric('RecordDeadLettered', MetricUnit.Count, 1);

    // Act
    const { stdout } = printed(flushMetrics);

    // Assess
    expect(stdout).toEqual([
      {
        _aws: {
          Timestamp: expect.any(Number),
          CloudWatchMetrics: [
            {
              Namespace: 'Rewards',
              Dimensions: [['service']],
              Metrics: [
                { Name: 'RewardsIssued', Unit: 'Count' },
                { Name: 'RecordDeadLettered', Unit: 'Count' },
              ],
            },
          ],
        },
        service: 'referral-rewards-prod',
        RewardsIssued: 2,
        RecordDeadLettered: [1, 1],
      },
    ]);
  });

  it('print nothing when nothing was recorded, and nothing twice', () => {
    // Prepare
    const { metrics, MetricUnit, flushMetrics } = load({ POWERTOOLS_METRICS_DISABLED: 'false' });
    metrics.addMetric('RewardsIssued', MetricUnit.Count, 2);

    // Act
    const { stdout } = printed(() => {
      flushMetrics();
      flushMetrics();
    });

    // Assess
    expect(stdout).toHaveLength(1);
  });

  it('print a single metric at once with its own dimension, apart from the buffered ones', () => {
    // Prepare
    const { metrics, MetricUnit } = load({ POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_SERVICE_NAME: 'referral-rewards' });
    metrics.addMetric('RewardsIssued', MetricUnit.Count, 2);

    // Act
    const { stdout } = printed(() =>
      metrics.singleMetric().addDimension('reason', 'velocity').addMetric('ReferralReview', MetricUnit.Count, 1),
    );

    // Assess
    expect(stdout).toHaveLength(1);
    expect(stdout[0]._aws.CloudWatchMetrics[0]).toMatchObject({
      Dimensions: [['service', 'reason']],
      Metrics: [{ Name: 'ReferralReview' }],
    });
    expect(stdout[0]).toMatchObject({ service: 'referral-rewards', reason: 'velocity', ReferralReview: 1 });
    expect(stdout[0].RewardsIssued).toBeUndefined();
    expect(metrics.hasStoredMetrics()).toBe(true);
  });

  it('publish on their own at 100 distinct metrics, the most one EMF document may hold', () => {
    // Prepare
    const { metrics, MetricUnit } = load({ POWERTOOLS_METRICS_DISABLED: 'false' });

    // Act
    const { stdout } = printed(() => {
      for (let i = 0; i < 100; i++) metrics.addMetric(`Metric${i}`, MetricUnit.Count, 1);
    });

    // Assess
    expect(stdout).toHaveLength(1);
    expect(stdout[0]._aws.CloudWatchMetrics[0].Metrics).toHaveLength(100);
    expect(metrics.hasStoredMetrics()).toBe(false);
  });

  it.each([
    [{ POWERTOOLS_METRICS_DISABLED: 'true' }, 0],
    [{ POWERTOOLS_DEV: 'true' }, 0],
    [{ POWERTOOLS_DEV: 'true', POWERTOOLS_METRICS_DISABLED: 'false' }, 1],
    [{}, 1],
  ])('under %j print %d line(s)', (env, lines) => {
    // Prepare
    const { metrics, MetricUnit, flushMetrics } = load(env as Record<string, string>);
    metrics.addMetric('RewardsIssued', MetricUnit.Count, 2);

    // Act
    const { stdout } = printed(flushMetrics);

    // Assess
    expect(stdout.filter((line) => '_aws' in line)).toHaveLength(lines);
  });
});
