/**
 * 1. Bundle and cold start. Each handler is bundled with esbuild's API using the options
 * serverless.yml gives serverless-esbuild (read from the file, so the two cannot drift), beside a
 * skeleton handler that imports only the same AWS SDK clients, bundled the same way. Then each
 * bundle is loaded in fresh `node` processes, interleaved, and the median load time compared.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve as resolvePath } from 'node:path';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { load } from 'js-yaml';
import { SERVERLESS_YML } from '../local/infra';
import { progress } from './logs';
import type { SectionResult } from './report';
import { fmt, fmtInt, median } from './stats';

const SECTION = '1. Bundle and cold start';
const ROOT = resolvePath(__dirname, '..');

/** serverless-esbuild's own options, removed before it calls esbuild (its bundle.ts). */
const PLUGIN_OPTIONS = [
  'concurrency',
  'zipConcurrency',
  'exclude',
  'nativeZip',
  'packager',
  'packagePath',
  'watch',
  'keepOutputDirectory',
  'packagerOptions',
  'installExtraArgs',
  'outputFileExtension',
  'outputBuildFolder',
  'outputWorkFolder',
  'nodeExternals',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
  'config',
];

interface ServerlessDoc {
  provider?: { runtime?: string; environment?: Record<string, unknown> };
  custom?: { esbuild?: Record<string, unknown> };
  functions?: Record<string, { handler?: string; environment?: Record<string, unknown> }>;
}

/** What serverless-esbuild passes to esbuild for this service (its defaults, then custom.esbuild). */
export function esbuildOptions(): { options: BuildOptions; nodeOptions: string; handlers: Record<'ingest' | 'worker', string> } {
  const doc = load(readFileSync(SERVERLESS_YML, 'utf8')) as ServerlessDoc;
  const custom = { ...(doc.custom?.esbuild ?? {}) };
  const exclude = Array.isArray(custom.exclude) ? (custom.exclude as string[]) : ['aws-sdk'];
  const external = Array.isArray(custom.external) ? (custom.external as string[]) : [];
  for (const key of PLUGIN_OPTIONS) delete custom[key];
  const runtimeMajor = /nodejs(\d+)/.exec(doc.provider?.runtime ?? '')?.[1];
  const options: BuildOptions = {
    bundle: true,
    platform: 'node',
    ...(runtimeMajor ? { target: `node${runtimeMajor}` } : {}),
    ...(custom as BuildOptions),
    external: [...external, ...(exclude.includes('*') ? [] : exclude)],
  };
  const handler = (name: 'ingest' | 'worker') => {
    const spec = doc.functions?.[name]?.handler ?? `functions/${name}.handler`;
    return `${spec.slice(0, spec.lastIndexOf('.'))}.ts`;
  };
  const nodeOptions = String(doc.provider?.environment?.NODE_OPTIONS ?? '');
  return { options, nodeOptions, handlers: { ingest: handler('ingest'), worker: handler('worker') } };
}

/** Handlers that import the same AWS SDK clients as ours and use them, and nothing else. */
const SKELETONS: Record<'ingest' | 'worker', string> = {
  // ingest: SQS, and Secrets Manager (lib/infra/secrets.ts).
  ingest: `
    import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
    import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
    const sqs = new SQSClient({});
    const secrets = new SecretsManagerClient({});
    export const handler = async (event: { body?: string }) => {
      await secrets.send(new GetSecretValueCommand({ SecretId: process.env.SECRET_ID }));
      await sqs.send(new SendMessageCommand({ QueueUrl: process.env.QUEUE_URL, MessageBody: event.body ?? '' }));
      return { statusCode: 202 };
    };`,
  // worker: SQS (dead-lettering), DynamoDB with the document client (ledger), Secrets Manager.
  worker: `
    import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
    import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
    import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
    import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
    const sqs = new SQSClient({});
    const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
    const secrets = new SecretsManagerClient({});
    export const handler = async (event: { Records: { body: string }[] }) => {
      await secrets.send(new GetSecretValueCommand({ SecretId: process.env.SECRET_ID }));
      for (const record of event.Records) {
        const key = { pk: record.body };
        await ddb.send(new UpdateCommand({ TableName: process.env.TABLE_NAME, Key: key, UpdateExpression: 'SET s = :s', ExpressionAttributeValues: { ':s': 1 } }));
        await ddb.send(new GetCommand({ TableName: process.env.TABLE_NAME, Key: key }));
        await sqs.send(new SendMessageCommand({ QueueUrl: process.env.DLQ_URL, MessageBody: record.body }));
      }
      return { batchItemFailures: [] };
    };`,
};

interface Built {
  file: string;
  bytes: number;
  metafile: Metafile;
}

async function bundle(name: string, outdir: string, options: BuildOptions, source: { entry?: string; stdin?: string }): Promise<Built> {
  const result = await build({
    ...options,
    ...(source.entry
      ? { entryPoints: [resolvePath(ROOT, source.entry)] }
      : { stdin: { contents: source.stdin ?? '', resolveDir: ROOT, sourcefile: `${name}.ts`, loader: 'ts' } }),
    outdir: join(outdir, name),
    metafile: true,
    write: true,
    logLevel: 'silent',
  });
  const [file] = Object.keys(result.metafile.outputs).filter((out) => out.endsWith('.js'));
  const path = resolvePath(ROOT, file);
  return { file: path, bytes: statSync(path).size, metafile: result.metafile };
}

/** Output bytes by package (node_modules/<pkg>, zod split by part), for "what dominates". */
function bytesByPackage(metafile: Metafile): Map<string, number> {
  const out = Object.values(metafile.outputs).find((o) => o.entryPoint !== undefined || Object.keys(o.inputs).length > 0);
  const by = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(out?.inputs ?? {})) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)(?:\/(v4\/[^/]+))?/.exec(input);
    const key = pkg ? (pkg[1] === 'zod' && pkg[2] ? `zod/${pkg[2]}` : pkg[1]) : '(our code)';
    by.set(key, (by.get(key) ?? 0) + bytesInOutput);
  }
  return by;
}

/** Milliseconds to require() a bundle in a fresh node, as the Lambda runtime does at init. */
function loadTimeMs(file: string, env: NodeJS.ProcessEnv): number {
  const script =
    'const t0 = process.hrtime.bigint(); require(process.argv[1]); ' +
    'process.stdout.write(String(Number(process.hrtime.bigint() - t0) / 1e6));';
  const child = spawnSync(process.execPath, ['-e', script, file], { env, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`loading ${basename(file)} failed: ${child.stderr}`);
  return Number(child.stdout.trim());
}

export async function benchBundles(options: { quick: boolean }): Promise<SectionResult> {
  const { options: buildOptions, nodeOptions, handlers } = esbuildOptions();
  const outdir = join(tmpdir(), `referral-rewards-bench-${process.pid}`);
  mkdirSync(outdir, { recursive: true });
  try {
    progress('bundles: building with esbuild (serverless.yml options)');
    const built = {
      ingest: await bundle('ingest', outdir, buildOptions, { entry: handlers.ingest }),
      worker: await bundle('worker', outdir, buildOptions, { entry: handlers.worker }),
      skeletonIngest: await bundle('skeleton-ingest', outdir, buildOptions, { stdin: SKELETONS.ingest }),
      skeletonWorker: await bundle('skeleton-worker', outdir, buildOptions, { stdin: SKELETONS.worker }),
    };

    const runs = options.quick ? 3 : 21;
    progress(`bundles: load time, ${runs} fresh node processes per bundle, interleaved`);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_SERVICE_NAME: 'referral-rewards',
      POWERTOOLS_METRICS_NAMESPACE: 'ReferralRewards',
      LOG_LEVEL: 'INFO',
      // As deployed (provider.environment.NODE_OPTIONS): source maps are read at load.
      NODE_OPTIONS: nodeOptions,
    };
    const order = ['ingest', 'skeletonIngest', 'worker', 'skeletonWorker'] as const;
    const files = Object.fromEntries(Object.entries(built).map(([key, value]) => [key, value.file])) as Record<
      (typeof order)[number],
      string
    >;
    const times = Object.fromEntries(order.map((key) => [key, [] as number[]])) as Record<(typeof order)[number], number[]>;
    for (const key of order) loadTimeMs(files[key], env); // warm the page cache
    for (let i = 0; i < runs; i++) for (const key of order) times[key].push(loadTimeMs(files[key], env));

    const rows: SectionResult['rows'] = [];
    const notes: string[] = [];
    const data: Record<string, number> = {};
    for (const fn of ['ingest', 'worker'] as const) {
      const app = built[fn];
      const skeleton = fn === 'ingest' ? built.skeletonIngest : built.skeletonWorker;
      const byteRatio = app.bytes / skeleton.bytes;
      rows.push({
        id: `bundle.${fn}.bytes`,
        section: SECTION,
        measure: `${fn} bundle, minified bytes`,
        value: `${fmtInt(app.bytes)} B`,
        reference: `skeleton with the same SDK clients: ${fmtInt(skeleton.bytes)} B`,
        ratio: byteRatio,
        target: '≤ 1.15',
        holds: byteRatio <= 1.15,
      });
      const appLoad = median(times[fn]);
      const skeletonLoad = median(fn === 'ingest' ? times.skeletonIngest : times.skeletonWorker);
      data[`${fn}LoadMs`] = appLoad;
      rows.push({
        id: `bundle.${fn}.load`,
        section: SECTION,
        measure: `${fn} module load, median of ${runs} fresh processes`,
        value: `${fmt(appLoad, 1)} ms`,
        reference: `skeleton: ${fmt(skeletonLoad, 1)} ms`,
        ratio: appLoad / skeletonLoad,
        target: '≤ 1.2',
        holds: appLoad / skeletonLoad <= 1.2,
      });

      // What the handler adds on top of the skeleton, biggest first.
      const appBy = bytesByPackage(app.metafile);
      const skeletonBy = bytesByPackage(skeleton.metafile);
      const extra = [...appBy.entries()]
        .map(([pkg, bytes]) => [pkg, bytes - (skeletonBy.get(pkg) ?? 0)] as const)
        .filter(([, bytes]) => bytes > 2_000)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6);
      notes.push(
        `${fn}: ${fmtInt(app.bytes - skeleton.bytes)} B more than the skeleton; the biggest additions: ` +
          extra.map(([pkg, bytes]) => `${pkg} ${fmt(bytes / 1024, 0)} KiB`).join(', ') +
          '.',
      );
    }
    notes.push(
      `esbuild options from serverless.yml: ${JSON.stringify({ ...buildOptions, external: buildOptions.external })}; ` +
        `bytes are the .js only, not the linked .map (read lazily: with or without --enable-source-maps the load times here are the same).`,
    );
    notes.push(
      `load time = require() of the bundle in a fresh \`node\` (NODE_OPTIONS="${nodeOptions}" as deployed), median; process start-up itself is excluded.`,
    );
    return { rows, notes, data };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
