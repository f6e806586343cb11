import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PermanentError, RetryableError } from '../domain/errors';
import { SECRET_KEYS, type Env } from './config';

export interface SecretSource {
  get(name: string, options: { transform: 'json'; maxAge: number }): Promise<unknown>;
}

/** Long enough that a busy container reads the secret a few times an hour; short enough that a rotated token lands quickly. */
const SECRET_MAX_AGE_SECONDS = 300;

/**
 * Secrets Manager JSON secrets, each cached for `maxAge` seconds per container. Errors keep the
 * SDK's name (ResourceNotFoundException, AccessDeniedException) for loadEnv to classify; a value
 * that is not JSON fails as TransformParameterError, the name Powertools' SecretsProvider gives
 * it, so either source is classified alike.
 */
export class SecretsManagerSource implements SecretSource {
  private readonly cache = new Map<string, { value: unknown; until: number }>();

  constructor(private readonly client: SecretsManagerClient = new SecretsManagerClient({})) {}

  async get(name: string, options: { transform: 'json'; maxAge: number }): Promise<unknown> {
    const cached = this.cache.get(name);
    if (cached && cached.until > Date.now()) return cached.value;
    const { SecretString } = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
    let value: unknown;
    try {
      value = JSON.parse(SecretString ?? '');
    } catch (error) {
      throw Object.assign(new Error(`secret ${name} is not JSON`, { cause: error }), { name: 'TransformParameterError' });
    }
    this.cache.set(name, { value, until: Date.now() + options.maxAge * 1000 });
    return value;
  }
}

let provider: SecretSource | undefined;

/**
 * What the internet-facing ingest may read: its own secret (`<service>/<stage>/webhook`) holds
 * only these, its IAM role can read no other secret, and these are the only keys it takes from
 * it, so a Shopify token pasted into the wrong secret still never reaches ingest.
 */
export const WEBHOOK_SECRET_KEYS = ['WEBHOOK_SECRET', 'WEBHOOK_SIGNING_SECRET'] as const;
/** The reconciler's secret (`<service>/<stage>/reconciler`): the PostHog personal API key (query:read). */
export const RECONCILER_SECRET_KEYS = ['POSTHOG_PERSONAL_API_KEY'] as const;

/**
 * The function environment, with `keys` (default: the worker's, SECRET_KEYS) filled in from the
 * Secrets Manager JSON secret named by SECRET_ID; any other key in the secret is ignored. Without
 * SECRET_ID (the local stack, tests) env vars are used as they are. The source caches the secret,
 * so calling this on every invocation is cheap.
 */
export async function loadEnv(env: Env = process.env, source?: SecretSource, keys: readonly string[] = SECRET_KEYS): Promise<Env> {
  const secretId = env.SECRET_ID?.trim();
  if (!secretId) return env;
  source ??= provider ??= new SecretsManagerSource();
  let secret: unknown;
  try {
    secret = await source.get(secretId, { transform: 'json', maxAge: SECRET_MAX_AGE_SECONDS });
  } catch (error) {
    const name = (error as { name?: string } | undefined)?.name ?? '';
    if (['ResourceNotFoundException', 'AccessDeniedException', 'TransformParameterError'].includes(name)) {
      throw new PermanentError('config_secret', `secret ${secretId} cannot be read (${name})`, { cause: error });
    }
    throw new RetryableError('Secrets Manager did not answer', { cause: error });
  }
  if (secret === null || typeof secret !== 'object') throw new PermanentError('config_secret', `secret ${secretId} must be a JSON object`);
  const merged: Env = { ...env };
  for (const key of keys) {
    const value = (secret as Record<string, unknown>)[key];
    if (typeof value === 'string' && value !== '') merged[key] = value;
  }
  return merged;
}
/**
 * The referral-codes function's secret (`<service>/<stage>/app`): the app backend's key for
 * POST /referral-codes, and while it is being rotated the key it replaces. Its own secret, so the
 * webhook's token never asks for codes and this key never posts a referral.
 */
export const APP_SECRET_KEYS = ['APP_API_KEY', 'APP_API_KEY_PREVIOUS'] as const;
