import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const ROOT = resolve(__dirname, '..', '..');
export const PACKAGE_STAGE = 'ci';
export const PACKAGE_TIMEOUT_MS = 240_000;

/** A resource in the packaged CloudFormation template; Properties as osls writes them. */
export interface CfnResource {
  Type: string;
  Condition?: string;
  Properties: Record<string, any>;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}

/** The parts of the packaged CloudFormation template the tests read. */
export interface Template {
  Conditions?: Record<string, unknown>;
  Resources: Record<string, CfnResource>;
  Outputs: Record<string, { Condition?: string; Value: unknown }>;
}

/**
 * An offline, credential-free environment for `serverless package`: osls's package makes no AWS
 * calls and has no telemetry; the one network call in the chain is npm's update notifier in npx.
 */
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
 * Packages a copy of the service and returns the CloudFormation template. A copy, because
 * serverless-esbuild builds in <service>/.esbuild: two packages of one directory at once (test
 * files run in parallel jest workers) would overwrite each other's bundles.
 */
export async function packageService(
  extraArgs: string[] = [],
  stage: string = PACKAGE_STAGE,
): Promise<{ dir: string; outDir: string; template: Template }> {
  const dir = mkdtempSync(join(tmpdir(), 'referral-rewards-package-'));
  const service = join(dir, 'service');
  const skip = new Set(['node_modules', '.git', '.serverless', '.esbuild', '.local', 'coverage']);
  cpSync(ROOT, service, { recursive: true, filter: (source) => !skip.has(source.slice(ROOT.length + 1).split('/')[0] ?? '') });
  symlinkSync(join(ROOT, 'node_modules'), join(service, 'node_modules'), 'dir');
  const outDir = join(dir, 'package');
  try {
    await run('npx', ['serverless', 'package', '--stage', stage, '--package', outDir, ...extraArgs], {
      cwd: service,
      env: offlineEnv(),
      timeout: PACKAGE_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    // A refused package (the deploy guard) leaves nothing behind; its stdout/stderr ride on the error.
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return { dir, outDir, template: JSON.parse(readFileSync(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template };
}

/**
 * The `--stage ci` package, built once per jest run and shared by every test file that reads it
 * (packaging.test.ts reads its template, lambda-artefacts.test.ts runs its zips). Test files run
 * in parallel workers, so the first one to create the run's directory (mkdir is atomic) packages
 * and the others wait for its `done` (or `failed`) marker. The directory is named after the run
 * (TEST_RUN_ID, set by tests/support/global-setup.mjs) and removed by its teardown.
 */
export function sharedPackageDir(runId: string | undefined = process.env.TEST_RUN_ID): string {
  if (!runId) throw new Error('TEST_RUN_ID is not set: run the tests through jest (tests/support/global-setup.mjs)');
  return join(tmpdir(), `referral-rewards-ci-package-${runId}`);
}

let shared: Promise<{ outDir: string; template: Template }> | undefined;

export function sharedPackage(): Promise<{ outDir: string; template: Template }> {
  shared ??= buildOrAwaitSharedPackage(sharedPackageDir());
  return shared;
}

async function buildOrAwaitSharedPackage(root: string): Promise<{ outDir: string; template: Template }> {
  const outDir = join(root, 'package');
  const done = join(root, 'done');
  const failed = join(root, 'failed');
  let builder = false;
  try {
    mkdirSync(root);
    builder = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if (builder) {
    try {
      const packaged = await packageService();
      renameSync(packaged.outDir, outDir);
      rmSync(packaged.dir, { recursive: true, force: true });
      writeFileSync(done, '');
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      writeFileSync(failed, `${(error as Error).message}\n${stdout}${stderr}`);
      throw error;
    }
  } else {
    const until = Date.now() + PACKAGE_TIMEOUT_MS;
    while (!existsSync(done)) {
      if (existsSync(failed)) throw new Error(`serverless package failed in another test file:\n${readFileSync(failed, 'utf8')}`);
      if (Date.now() > until) throw new Error(`serverless package did not finish within ${PACKAGE_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return { outDir, template: JSON.parse(readFileSync(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template };
}
