/**
 * Packages the real service with osls (`npx serverless package`) and checks the CloudFormation
 * template it produces. Runs offline with no AWS account: osls's `package` makes no AWS calls
 * and has no telemetry; the only network call in the chain is npm's own update notifier in
 * `npx`, disabled here with npm_config_update_notifier=false.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadInfraDefinitions } from '../../local/infra';
import { LIFECYCLE_INDEX_DEFINITION } from '../support/lifecycle';
import { PACKAGE_STAGE as STAGE, PACKAGE_TIMEOUT_MS, packageService, type CfnResource, type Template } from '../support/serverless-package';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

describe('serverless package (offline)', () => {
  let outDir: string;
  let template: Template;
  let resources: Record<string, CfnResource>;

  const ofType = (type: string): [string, CfnResource][] =>
    Object.entries(resources).filter(([, resource]) => resource.Type === type);
  const get = (logicalId: string, type: string): CfnResource => {
    const resource = resources[logicalId];
    expect(resource?.Type).toBe(type);
    return resource as CfnResource;
  };
  const statementsOf = (role: CfnResource): Statement[] =>
    (role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
      (policy) => policy.PolicyDocument.Statement,
    );

  let packageDir: string;

  beforeAll(async () => {
    const packaged = await packageService();
    packageDir = packaged.dir;
    outDir = packaged.outDir;
    template = packaged.template;
    resources = template.Resources;
  }, PACKAGE_TIMEOUT_MS + 10_000);

  afterAll(() => {
    if (packageDir) rmSync(packageDir, { recursive: true, force: true });
  });

  it('produces one bundle per function', () => {
    for (const fn of ['ingest', 'worker']) {
      const zip = join(outDir, `${fn}.zip`);
      expect(existsSync(zip)).toBe(true);
      expect(statSync(zip).size).toBeGreaterThan(0);
    }
  });

  it('runs both functions on nodejs22.x / arm64 with the agreed memory and timeouts', () => {
    const ingest = get('IngestLambdaFunction', 'AWS::Lambda::Function').Properties;
    const worker = get('WorkerLambdaFunction', 'AWS::Lambda::Function').Properties;
    for (const fn of [ingest, worker]) {
      expect(fn.Runtime).toBe('nodejs22.x');
      expect(fn.Architectures).toEqual(['arm64']);
    }
    expect(ingest).toMatchObject({ Handler: 'functions/ingest.handler', MemorySize: 256, Timeout: 10 });
    expect(worker).toMatchObject({ Handler: 'functions/worker.handler', MemorySize: 512, Timeout: 60 });
  });

  it('gives each function the environment it reads', () => {
    const common = ['SECRET_ID', 'POWERTOOLS_SERVICE_NAME', 'LOG_LEVEL', 'POWERTOOLS_METRICS_NAMESPACE'];
    const ingestEnv = get('IngestLambdaFunction', 'AWS::Lambda::Function').Properties.Environment.Variables;
    const workerEnv = get('WorkerLambdaFunction', 'AWS::Lambda::Function').Properties.Environment.Variables;
    expect(Object.keys(ingestEnv)).toEqual(
      expect.arrayContaining([...common, 'QUEUE_URL', 'REFERRAL_EVENT', 'REFERRER_EMAIL_PROPERTY', 'REDEEMER_EMAIL_PROPERTY']),
    );
    expect(Object.keys(workerEnv)).toEqual(
      expect.arrayContaining([
        ...common,
        'TABLE_NAME',
        'QUEUE_URL',
        'DLQ_URL',
        'REWARD_AMOUNT',
        'REWARD_CODE_LENGTH',
        'SHOPIFY_STORE_DOMAIN',
        'SHOPIFY_API_VERSION',
        'CUSTOMERIO_REGION',
        'CUSTOMERIO_EVENT',
      ]),
    );
    for (const env of [ingestEnv, workerEnv]) {
      expect(env.SECRET_ID).toEqual({ Ref: 'RewardsSecret' });
      expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe('ReferralRewards');
      expect(env.QUEUE_URL).toEqual({ Ref: 'RewardsQueue' });
    }
    expect(workerEnv.TABLE_NAME).toEqual({ Ref: 'LedgerTable' });
    expect(workerEnv.DLQ_URL).toEqual({ Ref: 'RewardsDeadLetterQueue' });
  });

  it('redrives the queue to the DLQ after 5 receives, with visibility timeout >= 6x the worker timeout', () => {
    const queue = get('RewardsQueue', 'AWS::SQS::Queue').Properties;
    const workerTimeout = get('WorkerLambdaFunction', 'AWS::Lambda::Function').Properties.Timeout as number;
    expect(queue.QueueName).toBe(`referral-rewards-${STAGE}-queue`);
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['RewardsDeadLetterQueue', 'Arn'] },
      maxReceiveCount: 5,
    });
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * workerTimeout);
    expect(queue.MessageRetentionPeriod).toBe(345600);
  });

  it('keeps dead letters 14 days and only allows redrive from/to the source queue', () => {
    const dlq = get('RewardsDeadLetterQueue', 'AWS::SQS::Queue').Properties;
    const queueName = get('RewardsQueue', 'AWS::SQS::Queue').Properties.QueueName as string;
    expect(dlq.QueueName).toBe(`referral-rewards-${STAGE}-dlq`);
    expect(dlq.MessageRetentionPeriod).toBe(14 * 24 * 60 * 60);
    expect(dlq.RedriveAllowPolicy).toEqual({
      redrivePermission: 'byQueue',
      sourceQueueArns: [{ 'Fn::Sub': `arn:\${AWS::Partition}:sqs:\${AWS::Region}:\${AWS::AccountId}:${queueName}` }],
    });
  });

  it('encrypts every SQS queue', () => {
    const queues = ofType('AWS::SQS::Queue');
    expect(queues.map(([id]) => id).sort()).toEqual(['RewardsDeadLetterQueue', 'RewardsQueue']);
    for (const [, queue] of queues) {
      expect(queue.Properties.SqsManagedSseEnabled === true || typeof queue.Properties.KmsMasterKeyId !== 'undefined').toBe(true);
    }
  });

  it('defines the ledger table: pk HASH, on-demand, PITR, SSE, retained on delete and replace', () => {
    const table = get('LedgerTable', 'AWS::DynamoDB::Table');
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
    expect(table.Properties).toMatchObject({
      TableName: `referral-rewards-${STAGE}-ledger`,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'lifecycleQueue', AttributeType: 'S' },
        { AttributeName: 'lifecycleAt', AttributeType: 'N' },
      ],
      GlobalSecondaryIndexes: [LIFECYCLE_INDEX_DEFINITION],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
  });

  it('feeds the worker from the queue with partial batch failures, at most 2 containers at once', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(1);
    const [, mapping] = mappings[0] as [string, CfnResource];
    expect(mapping.Properties).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': ['RewardsQueue', 'Arn'] },
      FunctionName: { 'Fn::GetAtt': ['WorkerLambdaFunction', 'Arn'] },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      ScalingConfig: { MaximumConcurrency: 2 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('routes POST /webhooks/posthog on the HTTP API to ingest', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route');
    expect(routes.map(([, route]) => route.Properties.RouteKey)).toEqual(['POST /webhooks/posthog']);
    const integrations = ofType('AWS::ApiGatewayV2::Integration');
    expect(integrations).toHaveLength(1);
    expect(JSON.stringify(integrations[0]?.[1].Properties.IntegrationUri)).toContain('IngestLambdaFunction');
  });

  it('gives each function its own role and no wildcard resources on sqs/dynamodb/secretsmanager', () => {
    const ingestRole = get('IngestLambdaFunction', 'AWS::Lambda::Function').Properties.Role;
    const workerRole = get('WorkerLambdaFunction', 'AWS::Lambda::Function').Properties.Role;
    expect(ingestRole).toEqual({ 'Fn::GetAtt': ['IngestRole', 'Arn'] });
    expect(workerRole).toEqual({ 'Fn::GetAtt': ['WorkerRole', 'Arn'] });
    expect(ofType('AWS::IAM::Role').map(([id]) => id).sort()).toEqual(['IngestRole', 'ReleaseRole', 'WorkerRole']);

    const wildcards: { role: string; actions: string[]; resource: unknown }[] = [];
    let dataStatements = 0;
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      for (const statement of statementsOf(role)) {
        const actions = asArray(statement.Action).filter((action) => /^(sqs|dynamodb|secretsmanager):/.test(action));
        if (actions.length === 0) continue;
        dataStatements += 1;
        // Literal strings with '*' ("*", "arn:aws:sqs:*:*:*") are wildcards; exact resources are Ref/GetAtt.
        for (const resource of asArray(statement.Resource)) {
          if (typeof resource === 'string' && resource.includes('*')) wildcards.push({ role: id, actions, resource });
        }
      }
    }
    expect(dataStatements).toBeGreaterThan(0);
    expect(wildcards).toEqual([]);
  });

  it('scopes each role to what its function does', () => {
    const actionsOn = (roleId: string, target: unknown): string[] =>
      statementsOf(get(roleId, 'AWS::IAM::Role'))
        .filter((statement) => asArray(statement.Resource).some((resource) => JSON.stringify(resource) === JSON.stringify(target)))
        .flatMap((statement) => asArray(statement.Action))
        .sort();
    const queueArn = { 'Fn::GetAtt': ['RewardsQueue', 'Arn'] };
    const dlqArn = { 'Fn::GetAtt': ['RewardsDeadLetterQueue', 'Arn'] };
    const tableArn = { 'Fn::GetAtt': ['LedgerTable', 'Arn'] };
    const secret = { Ref: 'RewardsSecret' };

    expect(actionsOn('IngestRole', queueArn)).toEqual(['sqs:SendMessage']);
    expect(actionsOn('IngestRole', secret)).toEqual(['secretsmanager:GetSecretValue']);
    expect(actionsOn('IngestRole', tableArn)).toEqual([]);
    expect(actionsOn('IngestRole', dlqArn)).toEqual([]);

    expect(actionsOn('WorkerRole', queueArn)).toEqual(
      ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
    );
    expect(actionsOn('WorkerRole', dlqArn)).toEqual(['sqs:SendMessage']);
    expect(actionsOn('WorkerRole', tableArn)).toEqual(
      ['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
    );
    expect(actionsOn('WorkerRole', secret)).toEqual(['secretsmanager:GetSecretValue']);

    const logsResources = (roleId: string): string =>
      JSON.stringify(
        statementsOf(get(roleId, 'AWS::IAM::Role'))
          .filter((statement) => asArray(statement.Action).some((action) => action.startsWith('logs:')))
          .map((statement) => statement.Resource),
      );
    expect(logsResources('IngestRole')).toContain(`/aws/lambda/referral-rewards-${STAGE}-ingest:`);
    expect(logsResources('IngestRole')).not.toContain('-worker');
    expect(logsResources('WorkerRole')).toContain(`/aws/lambda/referral-rewards-${STAGE}-worker:`);
    expect(logsResources('WorkerRole')).not.toContain('-ingest');
  });

  it('keeps function logs for 30 days', () => {
    for (const [, group] of ofType('AWS::Logs::LogGroup')) {
      expect(group.Properties.RetentionInDays).toBe(30);
    }
  });

  it('outputs the webhook URL, queue URLs, table name and secret ARN', () => {
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining(['HttpApiUrl', 'WebhookUrl', 'QueueUrl', 'DeadLetterQueueUrl', 'LedgerTableName', 'SecretArn']),
    );
    expect(JSON.stringify(template.Outputs.WebhookUrl?.Value)).toContain('/webhooks/posthog');
  });

  it('agrees with loadInfraDefinitions(): local stack and AWS share one definition', () => {
    const infra = loadInfraDefinitions(undefined, STAGE);
    const queue = get('RewardsQueue', 'AWS::SQS::Queue').Properties;
    const dlq = get('RewardsDeadLetterQueue', 'AWS::SQS::Queue').Properties;
    const table = get('LedgerTable', 'AWS::DynamoDB::Table').Properties;
    const worker = get('WorkerLambdaFunction', 'AWS::Lambda::Function').Properties;
    const [, mapping] = ofType('AWS::Lambda::EventSourceMapping')[0] as [string, CfnResource];

    expect(infra.queue).toEqual({
      name: queue.QueueName,
      attributes: { VisibilityTimeout: queue.VisibilityTimeout, MessageRetentionPeriod: queue.MessageRetentionPeriod },
      maxReceiveCount: queue.RedrivePolicy.maxReceiveCount,
    });
    expect(infra.deadLetterQueue).toEqual({
      name: dlq.QueueName,
      attributes: { MessageRetentionPeriod: dlq.MessageRetentionPeriod },
    });
    expect(infra.table).toEqual({
      name: table.TableName,
      keySchema: table.KeySchema,
      attributeDefinitions: table.AttributeDefinitions,
      billingMode: table.BillingMode,
      globalSecondaryIndexes: table.GlobalSecondaryIndexes,
    });
    expect(infra.worker).toEqual({
      batchSize: mapping.Properties.BatchSize,
      maximumBatchingWindow: mapping.Properties.MaximumBatchingWindowInSeconds,
      timeoutSeconds: worker.Timeout,
    });
  });
});
