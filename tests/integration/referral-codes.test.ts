import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { makeReferralCodesHandler } from '../../functions/referral-codes';
import { CODE_ALPHABET } from '../../lib/domain/codes';
import { loadReferralCodesConfig } from '../../lib/infra/config-referral-codes';
import { httpApiEvent } from '../../local/apigw';
import { signWebhookBody } from '../../local/vouch';
import { Pipeline, referralBody, WEBHOOK_SECRET } from '../support/pipeline';

/** POST /referral-codes and referrals that name their referrer by code, on dynalite, fauxqs and the fakes. */
describe('referral codes', () => {
  const APP_API_KEY = 'test-app-api-key-0123456789abcdefghij';
  let pipeline: Pipeline;

  beforeAll(async () => {
    pipeline = await Pipeline.start();
  });
  afterAll(async () => {
    await pipeline?.stop();
  });

  const codes = (secret: Record<string, string> = { APP_API_KEY }) =>
    makeReferralCodesHandler({
      ddb: pipeline.ddb,
      config: async () =>
        loadReferralCodesConfig({
          ...secret,
          REFERRAL_LINK: 'https://app.example.com/signup?ref={code}',
          TABLE_NAME: pipeline.resources.tableName,
          WEBHOOK_SECRET,
        }),
    });

  /** What the app's backend does: POST /referral-codes with its key. */
  const requestCode = async (
    body: unknown,
    key: string = APP_API_KEY,
    secret?: Record<string, string>,
  ): Promise<{ statusCode: number; body: any }> => {
    const response = (await codes(secret)(
      httpApiEvent({
        path: '/referral-codes',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    )) as APIGatewayProxyStructuredResultV2;
    return { statusCode: response.statusCode ?? 0, body: JSON.parse(String(response.body)) };
  };

  const codeItems = async (): Promise<number> => {
    const scan = await pipeline.ddb.send(new ScanCommand({ TableName: pipeline.resources.tableName }));
    return (scan.Items ?? []).filter((item) => String(item.pk).startsWith('refcode')).length;
  };

  /** A referral whose event names the referrer only by `code` (the app signs it, as pipeline.post does). */
  const referralByCode = (code: string, referrerEmail?: string) => {
    const referral = referralBody();
    const properties = (referral.body.event as { properties: Record<string, unknown> }).properties;
    delete properties.referrer_email;
    properties.referral_code = code;
    if (referrerEmail) properties.referrer_email = referrerEmail;
    return referral;
  };

  describe('POST /referral-codes', () => {
    it('answers one random code and its link per referrer, the same on every request', async () => {
      // Prepare
      const email = `ada-${Date.now()}@example.com`;

      // Act
      const first = await requestCode({ email, distinct_id: 'ada-distinct' });
      const second = await requestCode({ email });

      // Assess
      expect(first.statusCode).toBe(200);
      expect(first.body.code).toMatch(new RegExp(`^[${CODE_ALPHABET}]{10}$`));
      expect(first.body.link).toBe(`https://app.example.com/signup?ref=${first.body.code}`);
      expect(second.body).toEqual(first.body);
    });

    it('gives concurrent first requests for one person one code', async () => {
      // Prepare
      const email = `burst-${Date.now()}@example.com`;

      // Act
      const answers = await Promise.all(Array.from({ length: 12 }, () => requestCode({ email })));

      // Assess
      expect(answers.map((answer) => answer.statusCode)).toEqual(Array(12).fill(200));
      expect(new Set(answers.map((answer) => answer.body.code)).size).toBe(1);
    });

    it("folds an email's case, +tag and Gmail dots into the person's one code", async () => {
      // Prepare
      const local = `grace${Date.now()}`;
      const { body: plain } = await requestCode({ email: `${local}@gmail.com` });

      // Act
      const variants = await Promise.all(
        [`  ${local.toUpperCase()}@GMAIL.COM `, `${local}+promo@gmail.com`, `${local.slice(0, 3)}.${local.slice(3)}@googlemail.com`].map(
          (email) => requestCode({ email }),
        ),
      );

      // Assess
      expect(variants.map((variant) => variant.body.code)).toEqual([plain.code, plain.code, plain.code]);
    });

    it.each([
      ['a body that is not JSON', '{"email": ', 400, 'invalid_json'],
      ['a JSON array', '[]', 400, 'invalid_body'],
      ['no email', {}, 422, 'missing_email'],
      ['an email that is not one', { email: 'not-an-email' }, 422, 'invalid_email'],
      ['a distinct id that is not a string', { email: 'ok@example.com', distinct_id: 42 }, 422, 'invalid_distinct_id'],
    ])('refuses %s with a JSON error and stores nothing', async (_what, body, status, code) => {
      // Prepare
      const before = await codeItems();

      // Act
      const answer = await requestCode(body);

      // Assess
      expect(answer).toEqual({ statusCode: status, body: { error: { code, message: expect.any(String) } } });
      expect(await codeItems()).toBe(before);
    });

    it.each([
      ['a wrong key', 'wrong-key-0123456789abcdefghijklmnop'],
      ["the webhook's secret", WEBHOOK_SECRET],
    ])('refuses %s with 401 and stores nothing', async (_what, key) => {
      // Prepare
      const before = await codeItems();

      // Act
      const answer = await requestCode({ email: 'mallory@example.com' }, key);

      // Assess
      expect(answer.statusCode).toBe(401);
      expect(answer.body.error.code).toBe('unauthorized');
      expect(await codeItems()).toBe(before);
    });

    it('accepts the previous key only while the app secret still holds it (a rotation)', async () => {
      // Prepare
      const NEW_KEY = 'rotated-app-api-key-0123456789abcdefghij';
      const email = `rotation-${Date.now()}@example.com`;

      // Act
      const during = await requestCode({ email }, APP_API_KEY, { APP_API_KEY: NEW_KEY, APP_API_KEY_PREVIOUS: APP_API_KEY });
      const withNew = await requestCode({ email }, NEW_KEY, { APP_API_KEY: NEW_KEY, APP_API_KEY_PREVIOUS: APP_API_KEY });
      const after = await requestCode({ email }, APP_API_KEY, { APP_API_KEY: NEW_KEY });

      // Assess
      expect([during.statusCode, withNew.statusCode, after.statusCode]).toEqual([200, 200, 401]);
      expect(withNew.body.code).toBe(during.body.code);
    });

    it('is not a key the webhook accepts', async () => {
      // Prepare
      const { body } = referralBody();

      // Act
      const answer = await pipeline.post(body, { authorization: `Bearer ${APP_API_KEY}` });

      // Assess
      expect(answer.statusCode).toBe(401);
    });
  });

  describe('a referral that names a code', () => {
    it("pays the code's owner, with no referrer email in the event", async () => {
      // Prepare
      const owner = `owner-${Date.now()}@example.com`;
      const { body: issued } = await requestCode({ email: owner });
      const { uuid, redeemer, body } = referralByCode(issued.code.toLowerCase());

      // Act
      const accepted = await pipeline.post(body);
      await pipeline.drain();

      // Assess
      expect(accepted.statusCode).toBe(202);
      const record = await pipeline.record(uuid);
      expect(record).toMatchObject({ status: 'COMPLETED', referrerEmail: owner, redeemerEmail: redeemer });
      expect(pipeline.cardsFor(uuid)).toHaveLength(2);
      expect(pipeline.customerio.events.filter((event) => event.data?.refereeemail === redeemer)).toEqual([
        expect.objectContaining({ data: expect.objectContaining({ referreremail: owner }) }),
      ]);
    });

    it("pays the code's owner when the event also names another referrer email", async () => {
      // Prepare
      const owner = `real-${Date.now()}@example.com`;
      const { body: issued } = await requestCode({ email: owner });
      const { uuid, body } = referralByCode(issued.code, `impostor-${Date.now()}@example.com`);

      // Act
      await pipeline.post(body);
      await pipeline.drain();

      // Assess
      expect(await pipeline.record(uuid)).toMatchObject({ status: 'COMPLETED', referrerEmail: owner });
    });

    it('refuses a code we never issued, issues nothing and leaves the redeemer free for a real referral', async () => {
      // Prepare
      const unknown = referralByCode('ABCDEFGH23');
      const owner = `later-${Date.now()}@example.com`;
      const { body: issued } = await requestCode({ email: owner });

      // Act
      await pipeline.post(unknown.body);
      await pipeline.drain();
      const genuine = referralByCode(issued.code);
      (genuine.body.event as { properties: Record<string, unknown> }).properties.redeemer_email = unknown.redeemer;
      (genuine.body.event as { distinct_id: string }).distinct_id = unknown.redeemer;
      (genuine.body.person as { properties: { email: string } }).properties.email = unknown.redeemer;
      await pipeline.post(genuine.body);
      await pipeline.drain();

      // Assess
      expect(await pipeline.record(unknown.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'unknown_referral_code' });
      expect(pipeline.cardsFor(unknown.uuid)).toHaveLength(0);
      expect(await pipeline.record(genuine.uuid)).toMatchObject({ status: 'COMPLETED', referrerEmail: owner });
    });

    it('refuses an event whose code was swapped after the app signed it, and a forged unsigned one', async () => {
      // Prepare: the app signed a referral for one referrer's code; someone swaps in another's
      const { body: signedFor } = await requestCode({ email: `signed-${Date.now()}@example.com` });
      const { body: swappedIn } = await requestCode({ email: `swapped-${Date.now()}@example.com` });
      const swapped = referralByCode(signedFor.code);
      const signed = signWebhookBody(swapped.body, pipeline.signingKey);
      (signed.event as { properties: Record<string, unknown> }).properties.referral_code = swappedIn.code;
      const forged = referralByCode('ZZZZZZZZZZ');

      // Act
      await pipeline.post(signed);
      await pipeline.post(forged.body, {}, { sign: false });
      await pipeline.drain();

      // Assess
      expect(await pipeline.record(swapped.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'bad_referral_signature' });
      expect(await pipeline.record(forged.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'unsigned_referral' });
      expect([...pipeline.cardsFor(swapped.uuid), ...pipeline.cardsFor(forged.uuid)]).toEqual([]);
    });

    it('is refused at the door when it names neither a code nor a referrer email', async () => {
      // Prepare
      const { body } = referralBody();
      delete (body.event as { properties: Record<string, unknown> }).properties.referrer_email;

      // Act
      const answer = await pipeline.post(body);

      // Assess
      expect(answer.statusCode).toBe(422);
      expect(answer.body.error.code).toBe('missing_referrer_email');
    });
  });

  describe('REQUIRE_REFERRAL_CODE=true', () => {
    afterEach(() => {
      delete pipeline.env.REQUIRE_REFERRAL_CODE;
    });

    it('refuses a referral that names no code, and pays one that names a valid code', async () => {
      // Prepare
      pipeline.env.REQUIRE_REFERRAL_CODE = 'true';
      const emailOnly = referralBody();
      const { body: issued } = await requestCode({ email: `required-${Date.now()}@example.com` });
      const coded = referralByCode(issued.code);

      // Act
      await pipeline.post(emailOnly.body);
      await pipeline.post(coded.body);
      await pipeline.drain();

      // Assess
      expect(await pipeline.record(emailOnly.uuid)).toMatchObject({ status: 'REJECTED', rejectionReason: 'referral_code_required' });
      expect(pipeline.cardsFor(emailOnly.uuid)).toHaveLength(0);
      expect(await pipeline.record(coded.uuid)).toMatchObject({ status: 'COMPLETED' });
    });
  });
});
