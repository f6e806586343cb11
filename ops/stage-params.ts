/** A deployed stage's settings as serverless.yml's `params` give them (`default`, then the stage's block). */
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';
import type { Env } from '../lib/infra/config';
import { SERVERLESS_YML } from '../local/infra';

export function stageParams(stage: string): Env {
  const doc = load(readFileSync(SERVERLESS_YML, 'utf8')) as { params?: Record<string, Record<string, unknown>> };
  const params = { ...(doc.params?.default ?? {}), ...(doc.params?.[stage] ?? {}) };
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [key, String(value ?? '')]));
}

/** The variables of `env` that are set to something: an empty shell variable does not hide a param. */
export function setOnly(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value?.trim()));
}
