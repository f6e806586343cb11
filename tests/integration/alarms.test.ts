/**
 * The alarms, the optional alarm e-mail topic, the webhook throttle and the DRY_RUN switch, as
 * osls packages them (offline, no AWS account: see packaging.test.ts for why this is safe).
 * Packaged twice: without an alarm e-mail (the default) and with `--param alarmEmail=…`.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const ROOT = resolve(__dirname, '..', '..');
const STAGE = 'ci';
const EMAIL = 'oncall@example.com';
const PACKAGE_TIMEOUT_MS = 240_000;

interface CfnResource {
  Type: string;
  Condition?: string;
  Properties: Record<string, any>;
}

interface Template {
  Conditions?: Record<string, unknown>;
  Resources: Record<string, CfnResource>;
  Outputs: Record<string, { Condition?: string; Value: unknown }>;
}

function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'fake-secret-access-key-for-offline-packaging',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    npm_config_update_notifier: 'false',
    CI: 'true',
  };
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'ALARM_EMAIL', 'DRY_RUN']) delete env[name];
  return env;
}

/**
 * Packages a copy of the service: serverless-esbuild builds in <service>/.esbuild, so two
 * packages of the same directory at once (this file's two, packaging.test.ts in another jest
 * worker) would overwrite each other's bundles.
 */
async function packageTemplate(extraArgs: string[]): Promise<{ dir: string; template: Template }> {
  const dir = mkdtempSync(join(tmpdir(), 'referral-rewards-alarms-'));
  const service = join(dir, 'service');
  const skip = new Set(['node_modules', '.git', '.serverless', '.esbuild', '.local', 'coverage']);
  cpSync(ROOT, service, { recursive: true, filter: (source) => !skip.has(source.slice(ROOT.length + 1).split('/')[0] ?? '') });
  symlinkSync(join(ROOT, 'node_modules'), join(service, 'node_modules'), 'dir');
  const out = join(dir, 'package');
  await run('npx', ['serverless', 'package', '--stage', STAGE, '--package', out, ...extraArgs], {
    cwd: service,
    env: offlineEnv(),
    timeout: PACKAGE_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
  return { dir, template: JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8')) as Template };
}

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

const ALARMS = ['DeadLetterQueueAlarm', 'QueueAgeAlarm', 'WorkerErrorsAlarm', 'Ingest5xxAlarm'];
const TOPIC_ACTIONS = { 'Fn::If': ['HasAlarmEmail', [{ Ref: 'AlarmTopic' }], { Ref: 'AWS::NoValue' }] };

describe('alarms and throttling (serverless package, offline)', () => {
  let plain: { dir: string; template: Template };
  let withEmail: { dir: string; template: Template };

  beforeAll(async () => {
    [plain, withEmail] = await Promise.all([packageTemplate([]), packageTemplate([`--param=alarmEmail=${EMAIL}`])]);
  }, PACKAGE_TIMEOUT_MS + 10_000);

  afterAll(() => {
    for (const packaged of [plain, withEmail]) if (packaged) rmSync(packaged.dir, { recursive: true, force: true });
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

  it('alarms on any failed worker invocation', () => {
    expect(alarm(plain.template, 'WorkerErrorsAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'WorkerLambdaFunction' } }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
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

  it('points every alarm at the topic when there is one, treats no data as fine, and names the runbook', () => {
    for (const template of [plain.template, withEmail.template]) {
      for (const id of ALARMS) {
        const properties = alarm(template, id);
        expect(properties.AlarmActions).toEqual(TOPIC_ACTIONS);
        expect(properties.OKActions).toEqual(TOPIC_ACTIONS);
        expect(properties.TreatMissingData).toBe('notBreaching');
        expect(properties.AlarmDescription).toContain('docs/OPERATIONS.md');
        for (const dimension of properties.Dimensions as { Value: { Ref?: string; 'Fn::GetAtt'?: string[] } }[]) {
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
      DefaultRouteSettings: { ThrottlingBurstLimit: 100, ThrottlingRateLimit: 50 },
    });
  });

  it('deploys the worker with DRY_RUN off unless asked for', () => {
    expect(plain.template.Resources.WorkerLambdaFunction!.Properties.Environment.Variables.DRY_RUN).toBe('false');
  });
});
