import { requireHttps, stageEnv } from '../../ops/stage-params';
import { TargetError } from '../../ops/target';

describe("ops: a stage's settings", () => {
  it("takes every vendor location from the stage's params, never from the shell", () => {
    // Prepare: what `npm start` against a proxied shop leaves in a shell
    const shell = {
      SHOPIFY_BASE_URL: 'http://127.0.0.1:8443',
      SHOPIFY_STORE_DOMAIN: 'someone-else.myshopify.com',
      CUSTOMERIO_TRACK_URL: 'http://127.0.0.1:9000',
      CUSTOMERIO_REGION: 'eu',
      POSTHOG_HOST: 'http://127.0.0.1:9001',
      POSTHOG_APP_HOST: 'http://127.0.0.1:9002',
    };

    // Act
    const env = stageEnv('ci', shell);

    // Assess: serverless.yml's `ci` block and defaults
    expect(env).toMatchObject({
      SHOPIFY_STORE_DOMAIN: 'ci-example.myshopify.com',
      CUSTOMERIO_REGION: 'us',
      POSTHOG_HOST: '',
      POSTHOG_APP_HOST: 'https://us.posthog.com',
    });
    expect(env.SHOPIFY_BASE_URL).toBeUndefined();
    expect(env.CUSTOMERIO_TRACK_URL).toBeUndefined();
  });

  it("never mixes a shell's Shopify or Customer.io credentials into a stage's", () => {
    // Act
    const env = stageEnv('ci', { SHOPIFY_CLIENT_SECRET: 'local-app-secret', CUSTOMERIO_API_KEY: 'local-key', SECRET_ID: 'elsewhere' });

    // Assess
    expect([env.SHOPIFY_CLIENT_SECRET, env.CUSTOMERIO_API_KEY, env.SECRET_ID]).toEqual([undefined, undefined, undefined]);
  });

  it("keeps the shell's other settings over the params, as before", () => {
    // Act
    const env = stageEnv('ci', { RECONCILE_FROM: '2026-07-01T00:00:00Z', REWARD_TYPE: 'discount_code' });

    // Assess
    expect(env).toMatchObject({ RECONCILE_FROM: '2026-07-01T00:00:00Z', REWARD_TYPE: 'discount_code' });
  });

  it.each(['SHOPIFY_BASE_URL', 'CUSTOMERIO_TRACK_URL', 'POSTHOG_HOST', 'POSTHOG_APP_HOST'])(
    'refuses a stage whose %s is not https, loopback included',
    (name) => {
      // Act
      const check = () => requireHttps({ [name]: 'http://127.0.0.1:8443' });

      // Assess
      expect(check).toThrow(TargetError);
      expect(check).toThrow(`${name} in the stage's params must be an https URL`);
    },
  );
});
