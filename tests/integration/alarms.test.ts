/**
 * The alarms, the optional alarm e-mail topic, the webhook throttle and the DRY_RUN switch, as
 * osls packages them (offline, no AWS account: see packaging.test.ts for why this is safe).
 * Packaged twice: without an alarm e-mail (the default) and with `--param alarmEmail=…`.
 */
import { rmSync } from 'node:fs';
import { MISSING_LOG_MESSAGE, UNRECONCILABLE_LOG_MESSAGE } from '../../lib/domain/reconcile';
import { PACKAGE_STAGE as STAGE, PACKAGE_TIMEOUT_MS, packageService, sharedPackage, type Template } from '../support/serverless-package';

const EMAIL = 'oncall@example.com';

/** Evaluates the condition functions CloudFormation would, for the literal values osls leaves in them. */
function evaluateCondition(template: Template, name: string): boolean {
  const evaluate = (node: any): unknown => {
    if (node && typeof node === 'object' && !Array.isArray(node)) {
      if ('Fn::Not' in node) return !evaluate(node['Fn::Not'][0]);
      if ('Fn::Equals' in node) return evaluate(node['Fn::Equals'][0]) === evaluate(node['Fn::Equals'][1]);
      if ('Fn::And' in node) return node['Fn::And'].every((item: unknown) => evaluate(item));
      if ('Fn::Or' in node) return node['Fn::Or'].some((item: unknown) => evaluate(item));
      if ('Condition' in node) return evaluateCondition(template, node.Condition);
      throw new Error(`cannot evaluate ${JSON.stringify(node)}`);
    }
    return node;
  };
  const condition = template.Conditions?.[name];
  if (condition === undefined) throw new Error(`no condition ${name}`);
  return Boolean(evaluate(condition));
}

/**
 * A CloudWatch Logs JSON filter pattern, for the subset this stack writes: `{ term && term }` or
 * `{ term || term }`, each term `$.field = "value"` (optionally in parentheses). Anything else
 * throws, so a pattern outgrowing the matcher fails the test instead of passing it.
 * Syntax: "Filter pattern syntax for metric filters, subscription filters, filter log events, and
 * Live Tail", Amazon CloudWatch Logs User Guide (JSON log events).
 */
function jsonPatternMatches(pattern: string, line: string): boolean {
  const body = /^\{(.*)\}$/s.exec(pattern.trim())?.[1];
  if (body === undefined || (body.includes('&&') && body.includes('||'))) throw new Error(`unsupported pattern ${pattern}`);
  const event = JSON.parse(line) as Record<string, unknown>;
  const terms = body.split(/&&|\|\|/).map((term) => {
    const match = /^\s*\(?\s*\$\.(\w+)\s*=\s*"([^"]*)"\s*\)?\s*$/.exec(term);
    if (!match) throw new Error(`unsupported term ${term}`);
    return event[match[1]!] === match[2];
  });
  return body.includes('||') ? terms.some(Boolean) : terms.every(Boolean);
}

const ALARMS = [
  'DeadLetterQueueAlarm',
  'QueueAgeAlarm',
  'WorkerErrorsAlarm',
  'Ingest5xxAlarm',
  'WebhookUnauthorisedAlarm',
  'WebhookRejectedAlarm',
  'WebhookThrottledAlarm',
  'ReconcileMissingAlarm',
  'ReconcileUnreconcilableAlarm',
  'ReconcileErrorsAlarm',
  'ReleaseErrorsAlarm',
  'ReviewQueueAgeAlarm',
  'QualifyingEventsSilentAlarm',
];
const TOPIC_ACTIONS = { 'Fn::If': ['HasAlarmEmail', [{ Ref: 'AlarmTopic' }], { Ref: 'AWS::NoValue' }] };

describe('alarms and throttling (serverless package, offline)', () => {
  let plain: { template: Template };
  let withEmail: { dir: string; template: Template };

  beforeAll(async () => {
    // The plain package is the run's shared one (removed by the global teardown); the other is this file's own.
    // The second package also turns pay on value on, with a silence other than the default.
    [plain, withEmail] = await Promise.all([
      sharedPackage(),
      packageService([`--param=alarmEmail=${EMAIL}`, '--param=QUALIFY_EVENT=subscription paid', '--param=QUALIFY_SILENCE=36h']),
    ]);
  }, PACKAGE_TIMEOUT_MS + 10_000);

  afterAll(() => {
    if (withEmail) rmSync(withEmail.dir, { recursive: true, force: true });
  });

  const alarm = (template: Template, logicalId: string) => {
    const resource = template.Resources[logicalId];
    expect(resource?.Type).toBe('AWS::CloudWatch::Alarm');
    return resource!.Properties;
  };

  it('alarms as soon as one message is in the dead-letter queue', () => {
    expect(alarm(plain.template, 'DeadLetterQueueAlarm')).toMatchObject({
      AlarmName: `referral-rewards-${STAGE}-dlq-not-empty`,
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['RewardsDeadLetterQueue', 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
    });
  });

  it('alarms when the oldest message in the main queue is older than 15 minutes', () => {
    const age = alarm(plain.template, 'QueueAgeAlarm');
    expect(age).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['RewardsQueue', 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 900,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    // One ordinary retry (a visibility timeout) must not page anyone.
    expect(age.Threshold).toBeGreaterThan(plain.template.Resources.RewardsQueue!.Properties.VisibilityTimeout);
  });

  // The worker's failures are retried and dead-lettered; a failed releaser run leaves held referrals past their time unpaid.
  it.each([
    ['worker invocation', 'WorkerErrorsAlarm', 'WorkerLambdaFunction'],
    ['releaser run', 'ReleaseErrorsAlarm', 'ReleaseLambdaFunction'],
  ])('alarms on any failed %s', (_what, alarmId, functionId) => {
    expect(alarm(plain.template, alarmId)).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it("alarms on referrals in review over a day, this stage's releaser only, and when the releaser stops reporting", () => {
    expect(alarm(plain.template, 'ReviewQueueAgeAlarm')).toMatchObject({
      Namespace: 'ReferralRewards',
      MetricName: 'ReviewWaitingOverADay',
      Dimensions: [
        { Name: 'service', Value: 'referral-rewards' },
        { Name: 'function', Value: { Ref: 'ReleaseLambdaFunction' } },
      ],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'breaching',
    });
  });

  it('alarms on any 5xx the webhook answers', () => {
    expect(alarm(plain.template, 'Ingest5xxAlarm')).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: 'HttpApi' } }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  // Its metric is a heartbeat (emitted every minute, zeros included): missing data is the releaser down.
  const HEARTBEAT_ALARMS = new Set(['ReviewQueueAgeAlarm']);

  it('points every alarm at the topic when there is one, treats no data as fine (but for a heartbeat), and names the runbook', () => {
    for (const template of [plain.template, withEmail.template]) {
      for (const id of ALARMS) {
        const properties = alarm(template, id);
        expect(properties.AlarmActions).toEqual(TOPIC_ACTIONS);
        expect(properties.OKActions).toEqual(TOPIC_ACTIONS);
        expect(properties.TreatMissingData).toBe(HEARTBEAT_ALARMS.has(id) ? 'breaching' : 'notBreaching');
        expect(properties.AlarmDescription).toContain('docs/OPERATIONS.md');
        for (const dimension of (properties.Dimensions ?? []) as { Value: string | { Ref?: string; 'Fn::GetAtt'?: string[] } }[]) {
          if (typeof dimension.Value === 'string') continue;
          const target = dimension.Value.Ref ?? dimension.Value['Fn::GetAtt']?.[0];
          expect(template.Resources[target!]).toBeDefined();
        }
      }
    }
  });

  it('creates the SNS topic and e-mail subscription only when alarmEmail is given', () => {
    for (const template of [plain.template, withEmail.template]) {
      expect(template.Resources.AlarmTopic).toMatchObject({ Type: 'AWS::SNS::Topic', Condition: 'HasAlarmEmail' });
      expect(template.Resources.AlarmEmailSubscription).toMatchObject({
        Type: 'AWS::SNS::Subscription',
        Condition: 'HasAlarmEmail',
        Properties: { Protocol: 'email', TopicArn: { Ref: 'AlarmTopic' } },
      });
      expect(template.Outputs.AlarmTopicArn?.Condition).toBe('HasAlarmEmail');
    }
    expect(evaluateCondition(plain.template, 'HasAlarmEmail')).toBe(false);
    expect(evaluateCondition(withEmail.template, 'HasAlarmEmail')).toBe(true);
    expect(withEmail.template.Resources.AlarmEmailSubscription!.Properties.Endpoint).toBe(EMAIL);
  });

  it('throttles every route of the HTTP API', () => {
    const stage = plain.template.Resources.HttpApiStage;
    expect(stage?.Type).toBe('AWS::ApiGatewayV2::Stage');
    expect(stage!.Properties).toMatchObject({
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingBurstLimit: 1000, ThrottlingRateLimit: 500 },
    });
  });

  /** The metric filter feeding an alarm: same per-stage namespace and metric name. */
  const filterFor = (template: Template, alarmId: string) => {
    const { Namespace, MetricName } = alarm(template, alarmId);
    const filters = Object.values(template.Resources).filter(
      (resource) =>
        resource.Type === 'AWS::Logs::MetricFilter' &&
        resource.Properties.MetricTransformations.some(
          (t: { MetricNamespace: string; MetricName: string }) => t.MetricNamespace === Namespace && t.MetricName === MetricName,
        ),
    );
    expect(filters).toHaveLength(1);
    return filters[0]!.Properties;
  };

  // Only refusals a stranger cannot cause: CloudWatch notifies on state changes only, so an alarm
  // an anonymous caller can hold in ALARM would hide a real half-done rotation behind it.
  it.each([
    ['WebhookUnauthorisedAlarm', 'webhook-401', 'WebhookAuthMismatch'],
    ['WebhookRejectedAlarm', 'webhook-4xx-rejected', 'WebhookRejectedAuthenticated'],
  ])("%s fires on the first refusal of a request that proved a credential, counted by this stage's ingest", (alarmId, name, metric) => {
    expect(alarm(plain.template, alarmId)).toMatchObject({
      AlarmName: `referral-rewards-${STAGE}-${name}`,
      Namespace: 'ReferralRewards',
      MetricName: metric,
      Dimensions: [
        { Name: 'service', Value: 'referral-rewards' },
        { Name: 'function', Value: { Ref: 'IngestLambdaFunction' } },
      ],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('still counts every 401 and 400/413/422 from the access log, for the runbook, without alarming on them', () => {
    const filters = Object.values(plain.template.Resources).filter((resource) => resource.Type === 'AWS::Logs::MetricFilter');
    const names = filters.flatMap((filter) => filter.Properties.MetricTransformations.map((t: { MetricName: string }) => t.MetricName));
    const alarmed = Object.values(plain.template.Resources)
      .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm')
      .map((resource) => resource.Properties.MetricName);

    expect(names).toEqual(expect.arrayContaining(['WebhookAnswered401', 'WebhookAnsweredRejected']));
    expect(alarmed).not.toContain('WebhookAnswered401');
    expect(alarmed).not.toContain('WebhookAnsweredRejected');
  });

  it.each([['WebhookThrottledAlarm', '{ ($.status = "429") && ($.routeKey = "POST /webhooks/posthog") }']])(
    '%s counts the answers PostHog got from the access log, above a small threshold',
    (alarmId, pattern) => {
      expect(alarm(plain.template, alarmId)).toMatchObject({
        Namespace: `referral-rewards/${STAGE}`,
        Statistic: 'Sum',
        Period: 300,
        Threshold: 3,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      expect(filterFor(plain.template, alarmId)).toMatchObject({ LogGroupName: { Ref: 'HttpApiLogGroup' }, FilterPattern: pattern });
    },
  );

  it("counts toward the webhook's 429 alarm only the webhook route's 429s, never POST /referral-codes'", () => {
    // Prepare: access log lines in the stage's own format, one per route and status
    const format = JSON.parse(plain.template.Resources.HttpApiStage!.Properties.AccessLogSettings.Format as string) as Record<
      string,
      string
    >;
    const line = (routeKey: string, status: string): string =>
      JSON.stringify(
        Object.fromEntries(
          Object.entries(format).map(([field, variable]) => [
            field,
            variable === '$context.routeKey' ? routeKey : variable === '$context.status' ? status : '-',
          ]),
        ),
      );
    const webhookThrottled = line('POST /webhooks/posthog', '429');
    const codesThrottled = line('POST /referral-codes', '429');
    const webhookAccepted = line('POST /webhooks/posthog', '202');
    const codesFilter = Object.values(plain.template.Resources).find(
      (resource) =>
        resource.Type === 'AWS::Logs::MetricFilter' &&
        resource.Properties.MetricTransformations[0].MetricName === 'ReferralCodesAnswered429',
    );

    // Act
    const webhookPattern = filterFor(plain.template, 'WebhookThrottledAlarm').FilterPattern as string;
    const codesPattern = codesFilter?.Properties.FilterPattern as string;

    // Assess: the route's own 429s are still counted, on a metric no alarm watches
    expect(jsonPatternMatches(webhookPattern, webhookThrottled)).toBe(true);
    expect(jsonPatternMatches(webhookPattern, codesThrottled)).toBe(false);
    expect(jsonPatternMatches(webhookPattern, webhookAccepted)).toBe(false);
    expect(jsonPatternMatches(codesPattern, codesThrottled)).toBe(true);
    expect(jsonPatternMatches(codesPattern, webhookThrottled)).toBe(false);
    const alarmed = Object.values(plain.template.Resources)
      .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm')
      .map((resource) => resource.Properties.MetricName);
    expect(alarmed).not.toContain('ReferralCodesAnswered429');
  });

  it.each([
    ['ReconcileMissingAlarm', MISSING_LOG_MESSAGE],
    ['ReconcileUnreconcilableAlarm', UNRECONCILABLE_LOG_MESSAGE],
  ])("%s fires on the first finding, counted from the reconciler's WARN lines", (alarmId, message) => {
    expect(alarm(plain.template, alarmId)).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    expect(filterFor(plain.template, alarmId)).toMatchObject({
      LogGroupName: { Ref: 'ReconcileLogGroup' },
      FilterPattern: `{ $.message = "${message}" }`,
    });
  });

  it('alarms on any failed reconciler run', () => {
    expect(alarm(plain.template, 'ReconcileErrorsAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'ReconcileLambdaFunction' } }],
      Threshold: 1,
    });
  });

  it('alarms when no qualifying event has reached the worker for QUALIFY_SILENCE while referrals wait, in whole hours', () => {
    // Act
    const silent = alarm(withEmail.template, 'QualifyingEventsSilentAlarm');

    // Assess: an hour counts when the releaser saw referrals waiting and the worker handled no qualifying event
    const [received, waiting, expression] = silent.Metrics as any[];
    expect(received).toMatchObject({
      Id: 'received',
      ReturnData: false,
      MetricStat: {
        Metric: {
          Namespace: 'ReferralRewards',
          MetricName: 'QualifyingEventsReceived',
          Dimensions: [
            { Name: 'service', Value: 'referral-rewards' },
            { Name: 'function', Value: { Ref: 'WorkerLambdaFunction' } },
          ],
        },
        Period: 3600,
        Stat: 'Sum',
      },
    });
    expect(waiting).toMatchObject({
      Id: 'waiting',
      ReturnData: false,
      MetricStat: {
        Metric: {
          MetricName: 'ReferralsAwaitingQualification',
          Dimensions: [
            { Name: 'service', Value: 'referral-rewards' },
            { Name: 'function', Value: { Ref: 'ReleaseLambdaFunction' } },
          ],
        },
        Period: 3600,
        Stat: 'Maximum',
      },
    });
    expect(expression).toMatchObject({ Expression: 'IF(FILL(waiting, 0) > 0 AND FILL(received, 0) == 0, 1, 0)', ReturnData: true });
    expect(silent).toMatchObject({
      EvaluationPeriods: 36,
      DatapointsToAlarm: 36,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(silent.MetricName).toBeUndefined();
  });

  it('creates the qualifying-events alarm only when QUALIFY_EVENT is set, with a 2-day silence by default', () => {
    // Act
    const byDefault = alarm(plain.template, 'QualifyingEventsSilentAlarm');

    // Assess
    expect(plain.template.Resources.QualifyingEventsSilentAlarm!.Condition).toBe('HasQualifyEvent');
    expect(evaluateCondition(plain.template, 'HasQualifyEvent')).toBe(false);
    expect(evaluateCondition(withEmail.template, 'HasQualifyEvent')).toBe(true);
    expect(byDefault).toMatchObject({ EvaluationPeriods: 48, DatapointsToAlarm: 48 });
  });

  it('deploys the worker with DRY_RUN off unless asked for', () => {
    expect(plain.template.Resources.WorkerLambdaFunction!.Properties.Environment.Variables.DRY_RUN).toBe('false');
  });
});
