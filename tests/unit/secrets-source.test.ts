import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { PermanentError } from '../../lib/errors';
import { loadEnv, SecretsManagerSource } from '../../lib/secrets';
import { failure } from '../support/failure';

const secretsMock = mockClient(SecretsManagerClient);
const OPTIONS = { transform: 'json', maxAge: 300 } as const;

beforeEach(() => secretsMock.reset());

describe('SecretsManagerSource', () => {
  it('reads the secret once per maxAge, then again', async () => {
    // Prepare
    secretsMock.on(GetSecretValueCommand).resolves({ SecretString: '{"SHOPIFY_ACCESS_TOKEN":"shpat_x"}' });
    let now = 1_000_000;
    const source = new SecretsManagerSource(new SecretsManagerClient({ region: 'us-east-1' }), () => now);

    // Act
    const first = await source.get('referral-rewards/prod', OPTIONS);
    await source.get('referral-rewards/prod', OPTIONS);
    now += 300_001;
    await source.get('referral-rewards/prod', OPTIONS);

    // Assess
    expect(first).toEqual({ SHOPIFY_ACCESS_TOKEN: 'shpat_x' });
    expect(secretsMock).toHaveReceivedCommandTimes(GetSecretValueCommand, 2);
  });

  it('refuses a secret that is not JSON as config_secret, without quoting it', async () => {
    // Prepare
    secretsMock.on(GetSecretValueCommand).resolves({ SecretString: 'shpat_plain_token' });
    const source = new SecretsManagerSource(new SecretsManagerClient({ region: 'us-east-1' }));

    // Act
    const error = await failure(loadEnv({ SECRET_ID: 'referral-rewards/prod' }, source));

    // Assess
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('config_secret');
    expect(error.message).not.toContain('shpat_plain_token');
  });
});
