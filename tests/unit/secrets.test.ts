import type { Env } from '../../lib/infra/config';
import { PermanentError, RetryableError } from '../../lib/domain/errors';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { loadEnv, RECONCILER_SECRET_KEYS, SecretsManagerSource, WEBHOOK_SECRET_KEYS, type SecretSource } from '../../lib/infra/secrets';
import { failure } from '../support/failure';

const SECRET_ID = 'referral-rewards/prod/worker';

/** A SecretSource answering `get` with `answer` (or throwing it, when it throws), recording each call. */
function fakeSource(answer: () => unknown): SecretSource & { get: jest.Mock } {
  return { get: jest.fn(async () => answer()) };
}

const awsError = (name: string) => Object.assign(new Error(`${name} from Secrets Manager`), { name });

describe('loadEnv without SECRET_ID', () => {
  it('returns the environment as it is and reads no secret', async () => {
    // Prepare
    const env: Env = { WEBHOOK_SECRET: 'from-env', QUEUE_URL: 'http://queue' };
    const source = fakeSource(() => ({ WEBHOOK_SECRET: 'from-secret' }));

    // Act
    const loaded = await loadEnv(env, source);

    // Assess
    expect(loaded).toEqual({ WEBHOOK_SECRET: 'from-env', QUEUE_URL: 'http://queue' });
    expect(source.get).not.toHaveBeenCalled();
  });

  it('treats a blank SECRET_ID as absent', async () => {
    // Prepare
    const env: Env = { SECRET_ID: '   ', WEBHOOK_SECRET: 'from-env' };
    const source = fakeSource(() => ({ WEBHOOK_SECRET: 'from-secret' }));

    // Act
    const loaded = await loadEnv(env, source);

    // Assess
    expect(loaded.WEBHOOK_SECRET).toBe('from-env');
    expect(source.get).not.toHaveBeenCalled();
  });
});

describe('loadEnv with SECRET_ID', () => {
  it('reads the secret named by SECRET_ID as JSON', async () => {
    // Prepare
    const source = fakeSource(() => ({}));

    // Act
    await loadEnv({ SECRET_ID: SECRET_ID }, source);

    // Assess
    expect(source.get).toHaveBeenCalledTimes(1);
    expect(source.get).toHaveBeenCalledWith(SECRET_ID, expect.objectContaining({ transform: 'json' }));
  });

  it("lets the secret's keys override the environment and keeps the rest of it", async () => {
    // Prepare
    const env: Env = { SECRET_ID, WEBHOOK_SECRET: 'from-env', SHOPIFY_ACCESS_TOKEN: 'env-token', TABLE_NAME: 'ledger' };
    const source = fakeSource(() => ({ WEBHOOK_SECRET: 'from-secret', CUSTOMERIO_API_KEY: 'cio-key' }));

    // Act
    const loaded = await loadEnv(env, source);

    // Assess
    expect(loaded).toEqual({
      SECRET_ID,
      WEBHOOK_SECRET: 'from-secret',
      SHOPIFY_ACCESS_TOKEN: 'env-token',
      CUSTOMERIO_API_KEY: 'cio-key',
      TABLE_NAME: 'ledger',
    });
  });

  it('does not change the environment object it was given', async () => {
    // Prepare
    const env: Env = { SECRET_ID, WEBHOOK_SECRET: 'from-env' };
    const source = fakeSource(() => ({ WEBHOOK_SECRET: 'from-secret' }));

    // Act
    await loadEnv(env, source);

    // Assess
    expect(env).toEqual({ SECRET_ID, WEBHOOK_SECRET: 'from-env' });
  });

  it('ignores keys in the secret that are not secret keys', async () => {
    // Prepare
    const env: Env = { SECRET_ID, QUEUE_URL: 'http://real-queue', TABLE_NAME: 'ledger' };
    const source = fakeSource(() => ({ QUEUE_URL: 'http://hijacked', TABLE_NAME: 'other', SOMETHING_ELSE: 'x' }));

    // Act
    const loaded = await loadEnv(env, source);

    // Assess
    expect(loaded).toEqual({ SECRET_ID, QUEUE_URL: 'http://real-queue', TABLE_NAME: 'ledger' });
  });

  it('ignores empty and non-string values in the secret', async () => {
    // Prepare
    const env: Env = { SECRET_ID, WEBHOOK_SECRET: 'from-env', CUSTOMERIO_SITE_ID: 'site-env' };
    const source = fakeSource(() => ({ WEBHOOK_SECRET: '', CUSTOMERIO_SITE_ID: 12345 }));

    // Act
    const loaded = await loadEnv(env, source);

    // Assess
    expect(loaded.WEBHOOK_SECRET).toBe('from-env');
    expect(loaded.CUSTOMERIO_SITE_ID).toBe('site-env');
  });
});

describe('loadEnv failures', () => {
  it.each(['ResourceNotFoundException', 'AccessDeniedException', 'TransformParameterError'])(
    'fails permanently (config_secret) when the secret cannot be read: %s',
    async (name) => {
      // Prepare
      const source = fakeSource(() => {
        throw awsError(name);
      });

      // Act
      const error = await failure(loadEnv({ SECRET_ID }, source));

      // Assess
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).reason).toBe('config_secret');
      expect(error.message).toContain(SECRET_ID);
    },
  );

  it.each(['ThrottlingException', 'InternalServiceError', 'TimeoutError'])('fails retryably on any other error: %s', async (name) => {
    // Prepare
    const source = fakeSource(() => {
      throw awsError(name);
    });

    // Act
    const error = await failure(loadEnv({ SECRET_ID }, source));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('fails retryably on a thrown value that is not an error', async () => {
    // Prepare
    const source = fakeSource(() => {
      throw undefined;
    });

    // Act
    const error = await failure(loadEnv({ SECRET_ID }, source));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });

  it.each([
    ['a string', 'just-a-token'],
    ['a number', 42],
    ['null', null],
  ])('fails permanently (config_secret) when the secret is %s, not a JSON object', async (_label, secret) => {
    // Prepare
    const source = fakeSource(() => secret);

    // Act
    const error = await failure(loadEnv({ SECRET_ID }, source));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('config_secret');
  });
});

describe('loadEnv with the keys a function may read', () => {
  it('gives ingest only the webhook keys, even when the secret holds more', async () => {
    // Prepare
    const source = fakeSource(() => ({ WEBHOOK_SECRET: 'webhook', SHOPIFY_ACCESS_TOKEN: 'shpat_pasted_in_the_wrong_secret' }));

    // Act
    const loaded = await loadEnv({ SECRET_ID }, source, WEBHOOK_SECRET_KEYS);

    // Assess
    expect(loaded).toEqual({ SECRET_ID, WEBHOOK_SECRET: 'webhook' });
  });

  it('gives the worker the referral signing key from its secret, and never ingest, which faces the internet', async () => {
    // Prepare
    const source = fakeSource(() => ({ REFERRAL_SIGNING_KEY: 'referral-signing-key-of-the-app-backend', WEBHOOK_SECRET: 'webhook' }));

    // Act
    const worker = await loadEnv({ SECRET_ID }, source);
    const ingest = await loadEnv({ SECRET_ID }, source, WEBHOOK_SECRET_KEYS);

    // Assess
    expect(worker.REFERRAL_SIGNING_KEY).toBe('referral-signing-key-of-the-app-backend');
    expect(ingest.REFERRAL_SIGNING_KEY).toBeUndefined();
  });

  it('gives the reconciler its PostHog personal API key', async () => {
    // Prepare
    const source = fakeSource(() => ({ POSTHOG_PERSONAL_API_KEY: 'phx_key' }));

    // Act
    const loaded = await loadEnv({ SECRET_ID }, source, RECONCILER_SECRET_KEYS);

    // Assess
    expect(loaded.POSTHOG_PERSONAL_API_KEY).toBe('phx_key');
  });
});

describe("SecretsManagerSource, the deployed functions' reader", () => {
  const secretsManager = mockClient(SecretsManagerClient);
  beforeEach(() => secretsManager.reset());
  afterEach(() => jest.useRealTimers());

  it('reads a secret once per maxAge and again after it', async () => {
    // Prepare
    jest.useFakeTimers({ now: Date.parse('2026-12-03T10:00:00Z'), doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: '{"WEBHOOK_SECRET":"first"}' })
      .resolves({ SecretString: '{"WEBHOOK_SECRET":"rotated"}' });
    const source = new SecretsManagerSource(new SecretsManagerClient({}));

    // Act
    const first = await loadEnv({ SECRET_ID }, source, WEBHOOK_SECRET_KEYS);
    jest.setSystemTime(Date.parse('2026-12-03T10:04:59Z'));
    const cached = await loadEnv({ SECRET_ID }, source, WEBHOOK_SECRET_KEYS);
    jest.setSystemTime(Date.parse('2026-12-03T10:05:01Z'));
    const reread = await loadEnv({ SECRET_ID }, source, WEBHOOK_SECRET_KEYS);

    // Assess
    expect([first.WEBHOOK_SECRET, cached.WEBHOOK_SECRET, reread.WEBHOOK_SECRET]).toEqual(['first', 'first', 'rotated']);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    expect(secretsManager.commandCalls(GetSecretValueCommand)[0].args[0].input).toEqual({ SecretId: SECRET_ID });
  });

  it.each(['ResourceNotFoundException', 'AccessDeniedException'])(
    "lets Secrets Manager's %s reach loadEnv by name, which fails permanently (config_secret)",
    async (name) => {
      // Prepare
      secretsManager.on(GetSecretValueCommand).rejects(awsError(name));

      // Act
      const error = await failure(loadEnv({ SECRET_ID }, new SecretsManagerSource(new SecretsManagerClient({}))));

      // Assess
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).reason).toBe('config_secret');
    },
  );

  it('fails permanently (config_secret) on a secret that is not JSON, and never echoes its value', async () => {
    // Prepare
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: 'shpat_not_json_at_all' });

    // Act
    const error = await failure(loadEnv({ SECRET_ID }, new SecretsManagerSource(new SecretsManagerClient({}))));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('config_secret');
    expect(error.message).not.toContain('shpat_not_json_at_all');
  });

  it('fails retryably while Secrets Manager is throttling', async () => {
    // Prepare
    secretsManager.on(GetSecretValueCommand).rejects(awsError('ThrottlingException'));

    // Act
    const error = await failure(loadEnv({ SECRET_ID }, new SecretsManagerSource(new SecretsManagerClient({}))));

    // Assess
    expect(error).toBeInstanceOf(RetryableError);
  });
});
