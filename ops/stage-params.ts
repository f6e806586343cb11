/** A deployed stage's settings as serverless.yml's `params` give them (`default`, then the stage's block). */
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';
import type { Env } from '../lib/infra/config';
import { SERVERLESS_YML } from '../local/infra';
import { TargetError } from './target';

export function stageParams(stage: string): Env {
  const doc = load(readFileSync(SERVERLESS_YML, 'utf8')) as { params?: Record<string, Record<string, unknown>> };
  const params = { ...(doc.params?.default ?? {}), ...(doc.params?.[stage] ?? {}) };
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [key, String(value ?? '')]));
}

/** The variables of `env` that are set to something: an empty shell variable does not hide a param. */
export function setOnly(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value?.trim()));
}

/**
 * Where a stage's credentials are sent: only the stage's own params say that. A shell keeps
 * what `npm start` was given (the README suggests SHOPIFY_BASE_URL=http://127.0.0.1:… for a
 * real shop behind a proxy), and the stage's client secret would follow it.
 */
export const VENDOR_LOCATION_SETTINGS = [
  'SHOPIFY_BASE_URL',
  'SHOPIFY_STORE_DOMAIN',
  'CUSTOMERIO_TRACK_URL',
  'CUSTOMERIO_REGION',
  'POSTHOG_HOST',
  'POSTHOG_APP_HOST',
] as const;

/**
 * The worker secret's vendor credentials: a stage's own come from its secret, never mixed with
 * a shell's (a local shop's SHOPIFY_CLIENT_SECRET beside the stage's SHOPIFY_ACCESS_TOKEN would
 * be refused as "both", or worse, half of one app and half of another).
 */
const VENDOR_CREDENTIALS = [
  'SHOPIFY_ACCESS_TOKEN',
  'SHOPIFY_CLIENT_ID',
  'SHOPIFY_CLIENT_SECRET',
  'CUSTOMERIO_SITE_ID',
  'CUSTOMERIO_API_KEY',
];

/**
 * A stage's settings for an ops command, with no secret read: its serverless.yml params, then
 * what the shell sets except where credentials go (VENDOR_LOCATION_SETTINGS), the worker's
 * vendor credentials and SECRET_ID. Each vendor URL is then required to be https.
 */
export function stageEnv(stage: string, shell: Env = process.env): Env {
  const refused = new Set<string>([...VENDOR_LOCATION_SETTINGS, ...VENDOR_CREDENTIALS, 'SECRET_ID']);
  const fromShell = Object.fromEntries(Object.entries(setOnly(shell)).filter(([key]) => !refused.has(key)));
  const env: Env = { ...stageParams(stage), ...fromShell };
  requireHttps(env);
  return env;
}

/**
 * Every vendor URL a stage's settings name is https: a stage is never the local stack, so the
 * loaders' loopback exception (lib/infra/settings.ts) does not apply. SHOPIFY_STORE_DOMAIN needs
 * no check: the loader keeps only its host and always adds https.
 */
export function requireHttps(env: Env): void {
  for (const name of ['SHOPIFY_BASE_URL', 'CUSTOMERIO_TRACK_URL', 'POSTHOG_HOST', 'POSTHOG_APP_HOST'] as const) {
    const value = env[name]?.trim();
    if (value && !/^https:\/\//i.test(value)) throw new TargetError(`${name} in the stage's params must be an https URL`);
  }
}
