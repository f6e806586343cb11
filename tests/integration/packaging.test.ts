/**
 * Packages the real service with osls (`npx serverless package`) and checks the CloudFormation
 * template it produces. Runs offline with no AWS account: osls's `package` makes no AWS calls
 * and has no telemetry; the only network call in the chain is npm's own update notifier in
 * `npx`, disabled here with npm_config_update_notifier=false.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { commandsSent, workerSourceFiles } from '../support/worker-inputs';
import { loadInfraDefinitions } from '../../local/infra';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RECONCILER_ATTRIBUTES } from '../../lib/adapters/dynamodb/reconciler-ledger';
import { ReferralCodeIssuer } from '../../lib/adapters/dynamodb/referral-code-issuer';
import { REFERRAL_CODE_KEY_PREFIXES } from '../../lib/adapters/dynamodb/referral-codes';
import { issueReferralCode, resolveReferralCode } from '../../lib/domain/referral-codes';
import { LIFECYCLE_INDEX_DEFINITION } from '../support/lifecycle';
import {
  PACKAGE_STAGE as STAGE,
  PACKAGE_TIMEOUT_MS,
  packageService,
  sharedPackage,
  type CfnResource,
  type Template,
} from '../support/serverless-package';

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

  const ofType = (type: string): [string, CfnResource][] => Object.entries(resources).filter(([, resource]) => resource.Type === type);
  const get = (logicalId: string, type: string): CfnResource => {
    const resource = resources[logicalId];
    expect(resource?.Type).toBe(type);
    return resource as CfnResource;
  };
  const statementsOf = (role: CfnResource): Statement[] =>
    (role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap((policy) => policy.PolicyDocument.Statement);

  beforeAll(async () => {
    // The run's one package, shared with tests/integration/lambda-artefacts.test.ts (removed by the global teardown).
    const packaged = await sharedPackage();
    outDir = packaged.outDir;
    template = packaged.template;
    resources = template.Resources;
  }, PACKAGE_TIMEOUT_MS + 10_000);

  it('produces one bundle per function', () => {
    for (const fn of ['ingest', 'worker', 'reconcile']) {
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
        'REFERRAL_SIGNATURES',
      ]),
    );
    expect(workerEnv.REFERRAL_SIGNATURES).toBe('required');
    for (const env of [ingestEnv, workerEnv]) {
      expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe('ReferralRewards');
      expect(env.QUEUE_URL).toEqual({ Ref: 'RewardsQueue' });
    }
    // One secret per function (the split: ingest never sees the Shopify token).
    expect(ingestEnv.SECRET_ID).toEqual({ Ref: 'WebhookSecret' });
    expect(workerEnv.SECRET_ID).toEqual({ Ref: 'RewardsSecret' });
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

  it("tells each worker container the event source's concurrency, so its Shopify pacer takes that share of the budget", () => {
    // Prepare
    const [, mapping] = ofType('AWS::Lambda::EventSourceMapping')[0] as [string, CfnResource];

    // Act
    const workerEnv = get('WorkerLambdaFunction', 'AWS::Lambda::Function').Properties.Environment.Variables;

    // Assess
    expect(Number(workerEnv.WORKER_MAX_CONCURRENCY)).toBe(mapping.Properties.ScalingConfig.MaximumConcurrency);
  });

  it('routes POST /webhooks/posthog on the HTTP API to ingest', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route');
    // And POST /referral-codes to its own function (below).
    expect(routes.map(([, route]) => route.Properties.RouteKey).sort()).toEqual(['POST /referral-codes', 'POST /webhooks/posthog']);
    const integrations = ofType('AWS::ApiGatewayV2::Integration');
    expect(integrations).toHaveLength(2);
    expect(
      integrations.filter(([, integration]) => JSON.stringify(integration.Properties.IntegrationUri).includes('IngestLambdaFunction')),
    ).toHaveLength(1);
  });

  it('routes POST /referral-codes to its own function, with its own lower throttle', () => {
    // Prepare
    const integrations = ofType('AWS::ApiGatewayV2::Integration').map(([, integration]) =>
      JSON.stringify(integration.Properties.IntegrationUri),
    );
    const stage = ofType('AWS::ApiGatewayV2::Stage')[0]![1].Properties;

    // Assess
    expect(integrations.filter((uri) => uri.includes('ReferralCodesLambdaFunction'))).toHaveLength(1);
    expect(get('ReferralCodesLambdaFunction', 'AWS::Lambda::Function').Properties.Role).toEqual({
      'Fn::GetAtt': ['ReferralCodesRole', 'Arn'],
    });
    expect(stage.RouteSettings['POST /referral-codes']).toEqual({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 });
  });

  it('gives each function its own role and no wildcard resources on sqs/dynamodb/secretsmanager', () => {
    const ingestRole = get('IngestLambdaFunction', 'AWS::Lambda::Function').Properties.Role;
    const workerRole = get('WorkerLambdaFunction', 'AWS::Lambda::Function').Properties.Role;
    expect(ingestRole).toEqual({ 'Fn::GetAtt': ['IngestRole', 'Arn'] });
    expect(workerRole).toEqual({ 'Fn::GetAtt': ['WorkerRole', 'Arn'] });
    expect(get('ReconcileLambdaFunction', 'AWS::Lambda::Function').Properties.Role).toEqual({ 'Fn::GetAtt': ['ReconcileRole', 'Arn'] });
    expect(
      ofType('AWS::IAM::Role')
        .map(([id]) => id)
        .sort(),
    ).toEqual(['IngestRole', 'ReconcileRole', 'ReferralCodesRole', 'ReleaseRole', 'WorkerRole']);

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
    const webhookSecret = { Ref: 'WebhookSecret' };
    const reconcilerSecret = { Ref: 'ReconcilerSecret' };

    expect(actionsOn('IngestRole', queueArn)).toEqual(['sqs:SendMessage']);
    expect(actionsOn('IngestRole', webhookSecret)).toEqual(['secretsmanager:GetSecretValue']);
    expect(actionsOn('IngestRole', secret)).toEqual([]);
    expect(actionsOn('IngestRole', reconcilerSecret)).toEqual([]);
    expect(actionsOn('IngestRole', tableArn)).toEqual([]);
    expect(actionsOn('IngestRole', dlqArn)).toEqual([]);

    // What the SQS event source mapping needs, and ChangeMessageVisibility: the worker sets when a failed record comes back.
    expect(actionsOn('WorkerRole', queueArn)).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:ReceiveMessage',
    ]);
    expect(actionsOn('WorkerRole', dlqArn)).toEqual(['sqs:SendMessage']);
    expect(actionsOn('WorkerRole', secret)).toEqual(['secretsmanager:GetSecretValue']);
    expect(actionsOn('WorkerRole', webhookSecret)).toEqual([]);
    expect(actionsOn('WorkerRole', reconcilerSecret)).toEqual([]);

    expect(actionsOn('ReconcileRole', tableArn)).toEqual(['dynamodb:BatchGetItem']);
    expect(actionsOn('ReconcileRole', queueArn)).toEqual(['sqs:SendMessage']);
    expect(actionsOn('ReconcileRole', dlqArn)).toEqual([]);
    expect(actionsOn('ReconcileRole', reconcilerSecret)).toEqual(['secretsmanager:GetSecretValue']);
    expect(actionsOn('ReconcileRole', secret)).toEqual([]);
    expect(actionsOn('ReconcileRole', webhookSecret)).toEqual([]);

    // The app's POST /referral-codes: code items written once and read, its own secret only.
    const appSecret = { Ref: 'AppSecret' };
    expect(actionsOn('ReferralCodesRole', tableArn)).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem']);
    expect(actionsOn('ReferralCodesRole', appSecret)).toEqual(['secretsmanager:GetSecretValue']);
    for (const other of [secret, webhookSecret, reconcilerSecret, queueArn, dlqArn])
      expect(actionsOn('ReferralCodesRole', other)).toEqual([]);
    for (const role of ['IngestRole', 'WorkerRole', 'ReconcileRole']) expect(actionsOn(role, appSecret)).toEqual([]);

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
    expect(logsResources('ReconcileRole')).toContain(`/aws/lambda/referral-rewards-${STAGE}-reconcile:`);
  });

  it("grants the worker exactly the DynamoDB actions the worker's code sends, no more", async () => {
    // Every DynamoDB document command in the files the worker's bundle keeps code from (esbuild's own
    // list of inputs, as serverless-esbuild bundles it), as IAM actions: the releaser's and the
    // operators' queries live in other files and other roles.
    const ACTION: Record<string, string> = {
      Get: 'GetItem',
      Put: 'PutItem',
      Update: 'UpdateItem',
      Delete: 'DeleteItem',
      Query: 'Query',
      Scan: 'Scan',
      BatchGet: 'BatchGetItem',
      BatchWrite: 'BatchWriteItem',
      TransactGet: 'TransactGetItems',
      TransactWrite: 'TransactWriteItems',
    };
    const ours = await workerSourceFiles();
    const issued = new Set(
      commandsSent(ours, /@aws-sdk\/(lib|client)-dynamodb/).flatMap((command) => (ACTION[command] ? [`dynamodb:${ACTION[command]}`] : [])),
    );
    const granted = statementsOf(get('WorkerRole', 'AWS::IAM::Role'))
      .flatMap((statement) => asArray(statement.Action))
      .filter((action) => action.startsWith('dynamodb:'));
    expect(ours).toEqual(expect.arrayContaining(['lib/adapters/dynamodb/ledger.ts']));
    expect(granted.sort()).toEqual([...issued].sort());
  });

  it("grants the worker every SQS action the worker's code sends, besides what the event source mapping needs", async () => {
    // Prepare: the SQS commands in the files the worker's bundle is built from, as IAM actions.
    const issued = new Set(commandsSent(await workerSourceFiles(), /@aws-sdk\/client-sqs/).map((command) => `sqs:${command}`));

    // Act
    const granted = statementsOf(get('WorkerRole', 'AWS::IAM::Role'))
      .flatMap((statement) => asArray(statement.Action))
      .filter((action) => action.startsWith('sqs:'));

    // Assess
    expect([...issued].sort()).toEqual(['sqs:ChangeMessageVisibility', 'sqs:SendMessage']);
    expect(granted).toEqual(expect.arrayContaining([...issued, 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']));
  });

  it('retains the dead-letter queue and every secret on delete and replace, and protects the ledger from deletion', () => {
    for (const [id, type] of [
      ['RewardsDeadLetterQueue', 'AWS::SQS::Queue'],
      ['RewardsSecret', 'AWS::SecretsManager::Secret'],
      ['WebhookSecret', 'AWS::SecretsManager::Secret'],
      ['ReconcilerSecret', 'AWS::SecretsManager::Secret'],
      ['AppSecret', 'AWS::SecretsManager::Secret'],
      ['LedgerTable', 'AWS::DynamoDB::Table'],
    ] as const) {
      const resource = get(id, type);
      expect([id, resource.DeletionPolicy, resource.UpdateReplacePolicy]).toEqual([id, 'Retain', 'Retain']);
    }
    expect(get('LedgerTable', 'AWS::DynamoDB::Table').Properties.DeletionProtectionEnabled).toBe(true);
  });

  it('splits the secret: one per function, named by stage', () => {
    const names = ofType('AWS::SecretsManager::Secret').map(([id, secret]) => [id, secret.Properties.Name]);
    expect(names.sort()).toEqual([
      ['AppSecret', `referral-rewards/${STAGE}/app`],
      ['ReconcilerSecret', `referral-rewards/${STAGE}/reconciler`],
      ['RewardsSecret', `referral-rewards/${STAGE}/worker`],
      ['WebhookSecret', `referral-rewards/${STAGE}/webhook`],
    ]);
  });

  it('names no secret with a prefix of another, so a policy on `<name>*` grants that secret alone', () => {
    // Prepare
    const names = ofType('AWS::SecretsManager::Secret').map(([, secret]) => String(secret.Properties.Name));

    // Act
    const prefixes = names.flatMap((name) =>
      names.filter((other) => other !== name && other.startsWith(name)).map((other) => `${name} < ${other}`),
    );

    // Assess
    expect(names).toHaveLength(4);
    expect(prefixes).toEqual([]);
  });

  it('lets the reconciler read only the key of a ledger record, never its codes or emails', () => {
    // Prepare
    const onTable = statementsOf(get('ReconcileRole', 'AWS::IAM::Role')).filter((statement) =>
      asArray(statement.Resource).some((resource) => JSON.stringify(resource) === JSON.stringify({ 'Fn::GetAtt': ['LedgerTable', 'Arn'] })),
    );

    // Act
    const conditions = onTable.map((statement) => (statement as Statement & { Condition?: unknown }).Condition);

    // Assess: only the attributes the reconciler projects (lib/adapters/dynamodb/reconciler-ledger.ts)
    expect(conditions).toEqual([
      {
        'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...RECONCILER_ATTRIBUTES] },
        StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
        Null: { 'dynamodb:Attributes': 'false' },
      },
    ]);
  });

  it('lets the referral-codes function touch only the code items, never a referral record or a claim', async () => {
    // Prepare: every partition key the code store reads or writes, recorded from the adapter itself
    const items = new Map<string, Record<string, unknown>>();
    const keys: string[] = [];
    const client = {
      send: async ({ input }: { input: { Item?: Record<string, unknown>; Key?: { pk: string } } }) => {
        const pk = String((input.Item ?? input.Key)!.pk);
        keys.push(pk);
        if (input.Item) items.set(pk, input.Item);
        return input.Item ? {} : { Item: items.get(pk) };
      },
    } as unknown as DynamoDBDocumentClient;
    const store = new ReferralCodeIssuer(client, 'ledger');
    const code = await issueReferralCode({ email: 'ada@example.com', distinctId: 'ada-1' }, store);
    expect(await resolveReferralCode(code, store)).toEqual({ email: 'ada@example.com', distinctId: 'ada-1' });
    const onTable = statementsOf(get('ReferralCodesRole', 'AWS::IAM::Role')).filter((statement) =>
      asArray(statement.Resource).some((resource) => JSON.stringify(resource) === JSON.stringify({ 'Fn::GetAtt': ['LedgerTable', 'Arn'] })),
    );

    // Act: IAM's StringLike, for the subset the patterns use (`*` is any run of characters)
    const conditions = onTable.map(
      (statement) => (statement as Statement & { Condition?: Record<string, Record<string, string[]>> }).Condition,
    );
    const patterns = conditions[0]?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] ?? [];
    const allowed = (pk: string): boolean =>
      patterns.some((pattern) =>
        new RegExp(
          `^${pattern
            .split('*')
            .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        ).test(pk),
      );

    // Assess: exactly the adapter's prefixes, and a request that names no key is not allowed either
    expect(conditions).toEqual([
      {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': REFERRAL_CODE_KEY_PREFIXES.map((prefix) => `${prefix}*`) },
        Null: { 'dynamodb:LeadingKeys': 'false' },
      },
    ]);
    expect(new Set(keys.map((pk) => REFERRAL_CODE_KEY_PREFIXES.find((prefix) => pk.startsWith(prefix))))).toEqual(
      new Set(REFERRAL_CODE_KEY_PREFIXES),
    );
    expect(keys.filter((pk) => !allowed(pk))).toEqual([]);
    const others = [
      'referral#0190f3f4-8c1e-7000-8000-000000000001',
      'redeemer#bob@example.com',
      'referrer#ada@example.com',
      'budget#2026-12',
      'velocity#ada@example.com',
    ];
    expect(others.filter(allowed)).toEqual([]);
  });

  it('runs the lifecycle releaser every minute, so a held referral is paid within minutes of its time', () => {
    const rules = ofType('AWS::Events::Rule').filter(([id]) => id.startsWith('Release'));
    expect(rules).toHaveLength(1);
    expect(rules[0]![1].Properties).toMatchObject({
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [expect.objectContaining({ Arn: { 'Fn::GetAtt': ['ReleaseLambdaFunction', 'Arn'] } })],
    });
  });

  it("lets the releaser read the worker's secret only while CUSTOMERIO_STATUS_EVENT or QUALIFY_EVENT is set or REVOKE_PAID is true", () => {
    // Prepare
    const env = get('ReleaseLambdaFunction', 'AWS::Lambda::Function').Properties.Environment.Variables;
    const statements = statementsOf(get('ReleaseRole', 'AWS::IAM::Role')) as unknown as Record<string, unknown>[];

    // Act
    const plain = statements.filter((statement) => JSON.stringify(statement.Resource ?? null).includes('RewardsSecret'));
    const conditional = statements.filter((statement) => 'Fn::If' in statement);

    // Assess
    expect(env).toMatchObject({ SECRET_ID: { Ref: 'RewardsSecret' }, CUSTOMERIO_STATUS_EVENT: '', CUSTOMERIO_REGION: 'us' });
    expect(plain).toEqual([]);
    expect(conditional).toEqual([
      {
        'Fn::If': [
          'ReleaserReadsWorkerSecret',
          { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: [{ Ref: 'RewardsSecret' }] },
          { Ref: 'AWS::NoValue' },
        ],
      },
    ]);
    expect(template.Conditions).toMatchObject({
      ReleaserReadsWorkerSecret: {
        'Fn::Or': [
          { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] },
          { 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] },
          { 'Fn::Equals': ['false', 'true'] },
          { 'Fn::Equals': ['false', 'True'] },
          { 'Fn::Equals': ['false', 'TRUE'] },
        ],
      },
    });
    expect(env).toMatchObject({ QUALIFY_EVENT: '', REVOKE_PAID: 'false' });
  });

  it('runs the reconciler on an EventBridge schedule of RECONCILE_INTERVAL (15m by default)', () => {
    const rules = ofType('AWS::Events::Rule').filter(([id]) => id.startsWith('Reconcile'));
    expect(rules).toHaveLength(1);
    expect(rules[0]![1].Properties).toMatchObject({
      ScheduleExpression: 'rate(15 minutes)',
      State: 'ENABLED',
      Targets: [expect.objectContaining({ Arn: { 'Fn::GetAtt': ['ReconcileLambdaFunction', 'Arn'] } })],
    });
    const env = get('ReconcileLambdaFunction', 'AWS::Lambda::Function').Properties.Environment.Variables;
    expect(env).toMatchObject({
      SECRET_ID: { Ref: 'ReconcilerSecret' },
      TABLE_NAME: { Ref: 'LedgerTable' },
      QUEUE_URL: { Ref: 'RewardsQueue' },
      POSTHOG_APP_HOST: 'https://us.posthog.com',
      RECONCILE_LOOKBACK: '72h',
      RECONCILE_MIN_AGE: '5m',
      RECONCILE_FROM: '',
    });
  });

  it('writes HTTP API access logs without headers or bodies', () => {
    const stage = get('HttpApiStage', 'AWS::ApiGatewayV2::Stage').Properties;
    expect(stage.AccessLogSettings.DestinationArn).toEqual({ 'Fn::GetAtt': ['HttpApiLogGroup', 'Arn'] });
    const format = JSON.parse(stage.AccessLogSettings.Format as string) as Record<string, string>;
    expect(format).toMatchObject({ requestId: '$context.requestId', status: '$context.status', routeKey: '$context.routeKey' });
    expect(stage.AccessLogSettings.Format).not.toMatch(/header|authorization|body/i);
  });

  it('keeps function logs for 30 days', () => {
    for (const [, group] of ofType('AWS::Logs::LogGroup')) {
      expect(group.Properties.RetentionInDays).toBe(30);
    }
  });

  it('outputs the webhook URL, queue URLs, table name and secret ARN', () => {
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining([
        'HttpApiUrl',
        'WebhookUrl',
        'QueueUrl',
        'DeadLetterQueueUrl',
        'LedgerTableName',
        'SecretArn',
        'WebhookSecretArn',
        'ReconcilerSecretArn',
      ]),
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

describe('serverless package: the deploy guard', () => {
  it(
    'refuses a stage without SHOPIFY_STORE_DOMAIN before touching AWS, naming the setting, whatever the shell holds',
    async () => {
      // Prepare: a shell that has the setting; a stage whose params do not.
      const before = process.env.SHOPIFY_STORE_DOMAIN;
      process.env.SHOPIFY_STORE_DOMAIN = 'from-the-shell.myshopify.com';

      // Act
      let error: (Error & { stderr?: string; stdout?: string }) | undefined;
      try {
        const packaged = await packageService([], 'unconfigured');
        rmSync(packaged.dir, { recursive: true, force: true });
      } catch (caught) {
        error = caught as typeof error;
      } finally {
        if (before === undefined) delete process.env.SHOPIFY_STORE_DOMAIN;
        else process.env.SHOPIFY_STORE_DOMAIN = before;
      }

      // Assess
      expect(error).toBeDefined();
      const output = `${error?.stdout ?? ''}${error?.stderr ?? ''}`;
      expect(output).toContain('functions.worker.environment.SHOPIFY_STORE_DOMAIN');
      expect(output).toContain('Value not found at "param" source');
    },
    PACKAGE_TIMEOUT_MS,
  );
});
