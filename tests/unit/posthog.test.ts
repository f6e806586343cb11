import { RejectedError } from '../../lib/domain/errors';
import { parseWebhook, type ParsedWebhook, type PayloadOptions } from '../../lib/inbound/posthog-webhook';
import type { Referral } from '../../lib/domain/referral';
import { thrown } from '../support/failure';
import { loadDefaultBody } from '../support/fixtures';

const OPTIONS: PayloadOptions = {
  referralEvent: 'referral redeemed',
  referrerEmailProperty: 'referrer_email',
  redeemerEmailProperty: 'redeemer_email',
};

const EVENT_ID = '0193a8f2-6c1d-7b4e-9a55-2f0d3c4b5a61';

interface DefaultBody {
  event: { uuid: string; event: string; distinct_id: string; timestamp: string; properties: Record<string, unknown> };
  person?: { id?: string; properties: { email: string } };
}

function defaultBody(): DefaultBody {
  return JSON.parse(loadDefaultBody()) as DefaultBody;
}

/** Passed as `person` to bodyWith: the body has no person at all. */
const NO_PERSON = Symbol('no person');

/** A default-shaped body whose event carries `properties`, with `person` beside it (or none, for NO_PERSON). */
function bodyWith(properties: Record<string, unknown>, person: unknown = { properties: { email: 'person@example.com' } }): string {
  const event = { uuid: EVENT_ID, event: 'referral redeemed', distinct_id: 'd-1', properties };
  return JSON.stringify(person === NO_PERSON ? { event } : { event, person });
}

const normalise = (email: unknown) => String(email).trim().toLowerCase();

function referralOf(parsed: ParsedWebhook): Referral {
  if (parsed.kind !== 'referral') throw new Error(`expected a referral, got ${JSON.stringify(parsed)}`);
  return parsed.referral;
}

describe('parseWebhook: PostHog default body', () => {
  it('turns the default body into a referral with the event id, normalised emails, the redeemer as customer and the person kept for the rules', () => {
    // Prepare
    const fixture = defaultBody();

    // Act
    const referral = referralOf(parseWebhook(loadDefaultBody(), OPTIONS));

    // Assess
    expect(referral).toEqual({
      v: 1,
      eventId: fixture.event.uuid.toLowerCase(),
      eventName: 'referral redeemed',
      referrerEmail: normalise(fixture.event.properties.referrer_email),
      redeemerEmail: normalise(fixture.event.properties.redeemer_email),
      customerEmail: normalise(fixture.event.properties.redeemer_email),
      personEmail: normalise(fixture.person?.properties.email),
      personId: fixture.person?.id,
      distinctId: fixture.event.distinct_id,
      occurredAt: fixture.event.timestamp,
    });
  });

  it('lowercases and trims the referrer, redeemer and person emails', () => {
    // Prepare
    const body = bodyWith(
      { referrer_email: '  Referrer.Person@Example.COM ', redeemer_email: '\tRedeemer@EXAMPLE.com\n' },
      { properties: { email: ' Person@Example.com ' } },
    );

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral.referrerEmail).toBe('referrer.person@example.com');
    expect(referral.redeemerEmail).toBe('redeemer@example.com');
    expect(referral.personEmail).toBe('person@example.com');
  });

  it('lowercases the event uuid into the eventId', () => {
    // Prepare
    const body = JSON.stringify({
      event: {
        uuid: EVENT_ID.toUpperCase(),
        event: 'referral redeemed',
        properties: { referrer_email: 'a@example.com', redeemer_email: 'b@example.com' },
      },
    });

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral.eventId).toBe(EVENT_ID);
  });

  it('uses the redeemer email as the customer when the person is absent', () => {
    // Prepare
    const fixture = defaultBody();
    delete fixture.person;

    // Act
    const referral = referralOf(parseWebhook(JSON.stringify(fixture), OPTIONS));

    // Assess
    expect(referral.customerEmail).toBe(normalise(fixture.event.properties.redeemer_email));
  });

  it('attaches the codes to the redeemer, never to a person email that differs from it (issue #10, defect 3)', () => {
    // Prepare
    const body = bodyWith(
      { referrer_email: 'referrer@example.com', redeemer_email: 'redeemer@example.com' },
      { properties: { email: 'profile@example.com' } },
    );

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral.customerEmail).toBe('redeemer@example.com');
    expect(referral.personEmail).toBe('profile@example.com');
  });
});

describe('parseWebhook: bare event', () => {
  it('accepts a bare event object and uses the redeemer as the customer', () => {
    // Prepare
    const fixture = defaultBody();
    const bare = JSON.stringify(fixture.event);

    // Act
    const referral = referralOf(parseWebhook(bare, OPTIONS));

    // Assess
    expect(referral.eventId).toBe(fixture.event.uuid.toLowerCase());
    expect(referral.referrerEmail).toBe(normalise(fixture.event.properties.referrer_email));
    expect(referral.customerEmail).toBe(normalise(fixture.event.properties.redeemer_email));
  });
});

describe('parseWebhook: other events', () => {
  it('ignores another event name and still reports its eventId', () => {
    // Prepare
    const fixture = defaultBody();
    fixture.event.event = '$pageview';

    // Act
    const parsed = parseWebhook(JSON.stringify(fixture), OPTIONS);

    // Assess
    expect(parsed).toEqual({ kind: 'ignored', eventName: '$pageview', eventId: fixture.event.uuid });
  });

  it('ignores another event name whose uuid is not a UUID, without an eventId', () => {
    // Prepare
    const body = JSON.stringify({ event: { uuid: 'not-a-uuid', event: '$pageview' } });

    // Act
    const parsed = parseWebhook(body, OPTIONS);

    // Assess
    expect(parsed).toEqual({ kind: 'ignored', eventName: '$pageview', eventId: undefined });
  });

  it('ignores another event name that has no uuid key at all', () => {
    // Prepare
    const body = JSON.stringify({ event: { event: '$pageview', properties: {} } });

    // Act
    const parsed = parseWebhook(body, OPTIONS);

    // Assess
    expect(parsed).toEqual({ kind: 'ignored', eventName: '$pageview', eventId: undefined });
  });
});

describe('parseWebhook: bodies it cannot read', () => {
  it('answers 400 invalid_json to a body that is not JSON', () => {
    // Act
    const error = thrown(() => parseWebhook('{"event": ', OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 400, code: 'invalid_json' });
  });

  it.each([
    ['an array', '[{"event": "referral redeemed"}]'],
    ['a number', '42'],
    ['a string', '"referral redeemed"'],
    ['null', 'null'],
  ])('answers 400 invalid_body to %s', (_label, body) => {
    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 400, code: 'invalid_body' });
  });

  it.each([
    ['a wrapped event without a name', { event: { uuid: EVENT_ID, properties: {} } }],
    ['a bare event without a name', { uuid: EVENT_ID, properties: {} }],
    ['an empty event name', { event: { uuid: EVENT_ID, event: '' } }],
    ['an event name that is not a string', { event: { uuid: EVENT_ID, event: 7 } }],
  ])('answers 422 missing_event_name to %s', (_label, body) => {
    // Act
    const error = thrown(() => parseWebhook(JSON.stringify(body), OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'missing_event_name' });
  });
});

describe('parseWebhook: the event uuid', () => {
  it('answers 422 missing_event_uuid when the event has a name but no uuid key', () => {
    // Prepare
    const body = JSON.stringify({
      event: { event: 'referral redeemed', properties: { referrer_email: 'a@example.com', redeemer_email: 'b@example.com' } },
    });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'missing_event_uuid' });
  });

  it.each([
    ['null', null],
    ['empty', ''],
  ])('answers 422 missing_event_uuid when the uuid is %s', (_label, uuid) => {
    // Prepare
    const body = JSON.stringify({
      event: { uuid, event: 'referral redeemed', properties: { referrer_email: 'a@example.com', redeemer_email: 'b@example.com' } },
    });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'missing_event_uuid' });
  });

  it.each([
    ['not a uuid', 'not-a-uuid'],
    ['a number', 12345],
    ['a truncated uuid', EVENT_ID.slice(0, -1)],
  ])('answers 422 invalid_event_uuid when the uuid is %s', (_label, uuid) => {
    // Prepare
    const body = JSON.stringify({
      event: { uuid, event: 'referral redeemed', properties: { referrer_email: 'a@example.com', redeemer_email: 'b@example.com' } },
    });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'invalid_event_uuid' });
  });
});

describe('parseWebhook: emails', () => {
  it('answers 422 missing_referrer_email when the referrer property is missing', () => {
    // Prepare
    const body = bodyWith({ redeemer_email: 'redeemer@example.com' });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'missing_referrer_email' });
    expect(error.message).toContain('referrer_email');
  });

  it.each([
    ['not an email', 'referrer-at-example.com'],
    ['a number', 42],
    ['too long', `${'a'.repeat(250)}@example.com`],
  ])('answers 422 invalid_referrer_email when the referrer email is %s', (_label, email) => {
    // Prepare
    const body = bodyWith({ referrer_email: email, redeemer_email: 'redeemer@example.com' });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'invalid_referrer_email' });
  });

  it('falls back to person.properties.email for the redeemer when the redeemer property is missing', () => {
    // Prepare
    const body = bodyWith({ referrer_email: 'referrer@example.com' }, { properties: { email: 'Person@Example.com' } });

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral.redeemerEmail).toBe('person@example.com');
    expect(referral.customerEmail).toBe('person@example.com');
  });

  it.each([
    ['empty', ''],
    ['whitespace only', ' \t '],
    ['null', null],
  ])('falls back to person.properties.email for the redeemer when the redeemer property is %s, as when it is missing', (_label, value) => {
    // Prepare
    const body = bodyWith(
      { referrer_email: 'referrer@example.com', redeemer_email: value },
      { properties: { email: 'Person@Example.com' } },
    );

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral.redeemerEmail).toBe('person@example.com');
  });

  it('answers 422 missing_redeemer_email for an empty redeemer property when there is no person email to stand in', () => {
    // Prepare
    const body = bodyWith({ referrer_email: 'referrer@example.com', redeemer_email: '' }, NO_PERSON);

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'missing_redeemer_email' });
  });

  it('answers 422 missing_redeemer_email when neither the redeemer property nor a person email is there', () => {
    // Prepare
    const body = bodyWith({ referrer_email: 'referrer@example.com' }, NO_PERSON);

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'missing_redeemer_email' });
  });

  it('answers 422 invalid_redeemer_email when the redeemer email is not an email', () => {
    // Prepare
    const body = bodyWith({ referrer_email: 'referrer@example.com', redeemer_email: 'nobody' });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'invalid_redeemer_email' });
  });

  it('answers 422 invalid_properties when the event properties are not an object', () => {
    // Prepare
    const body = JSON.stringify({ event: { uuid: EVENT_ID, event: 'referral redeemed', properties: 'referrer@example.com' } });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'invalid_properties' });
  });
});

describe('parseWebhook: configurable names', () => {
  const custom: PayloadOptions = {
    referralEvent: 'Invite Accepted',
    referrerEmailProperty: 'inviter',
    redeemerEmailProperty: 'invitee',
  };

  it('reads the event name and email properties named in the options', () => {
    // Prepare
    const body = JSON.stringify({
      event: { uuid: EVENT_ID, event: 'Invite Accepted', properties: { inviter: 'Inviter@Example.com', invitee: 'invitee@example.com' } },
    });

    // Act
    const referral = referralOf(parseWebhook(body, custom));

    // Assess
    expect(referral).toMatchObject({
      eventName: 'Invite Accepted',
      referrerEmail: 'inviter@example.com',
      redeemerEmail: 'invitee@example.com',
    });
  });

  it('ignores the default event name when the options name another', () => {
    // Act
    const parsed = parseWebhook(loadDefaultBody(), custom);

    // Assess
    expect(parsed.kind).toBe('ignored');
  });

  it('names the configured property when it is missing', () => {
    // Prepare
    const body = JSON.stringify({
      event: { uuid: EVENT_ID, event: 'Invite Accepted', properties: { referrer_email: 'a@example.com', invitee: 'b@example.com' } },
    });

    // Act
    const error = thrown(() => parseWebhook(body, custom), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'missing_referrer_email' });
    expect(error.message).toContain('inviter');
  });
});

describe('parseWebhook: what the app vouches with', () => {
  const SIGNATURE = 'EveHz2HVuwzqAAY0hlQH-q_NLAnO-Qx1J4hlRI1vEw0';

  it('carries referral_signature and referral_code (trimmed, lowercased) into the queued referral, unchecked', () => {
    // Prepare
    const body = bodyWith({
      referrer_email: 'referrer@example.com',
      redeemer_email: 'bob@example.com',
      referral_code: ' K7M2Q9XP ',
      referral_signature: ` ${SIGNATURE}\n`,
    });

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral).toMatchObject({ referralCode: 'k7m2q9xp', referralSignature: SIGNATURE });
  });

  it('queues an unsigned referral without either field: only the worker, which holds the key, judges it', () => {
    // Prepare
    const body = bodyWith({
      referrer_email: 'referrer@example.com',
      redeemer_email: 'bob@example.com',
      referral_code: '  ',
      referral_signature: null,
    });

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(Object.keys(referral)).not.toContain('referralCode');
    expect(Object.keys(referral)).not.toContain('referralSignature');
  });

  it('reads a numeric referral code as its digits', () => {
    // Prepare
    const body = bodyWith({ referrer_email: 'referrer@example.com', redeemer_email: 'bob@example.com', referral_code: 20261203 });

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral.referralCode).toBe('20261203');
  });

  it('cuts an over-long signature to a bound, so the queue message stays small and the worker refuses it', () => {
    // Prepare
    const body = bodyWith({
      referrer_email: 'referrer@example.com',
      redeemer_email: 'bob@example.com',
      referral_signature: 'x'.repeat(100_000),
    });

    // Act
    const referral = referralOf(parseWebhook(body, OPTIONS));

    // Assess
    expect(referral.referralSignature).toBe('x'.repeat(128));
  });

  it.each([
    ['an object', { code: 'K7M2Q9XP' }],
    ['longer than 64 characters', 'k'.repeat(65)],
    ['holding a line break', 'k7m2\nq9xp'],
  ])('answers 422 invalid_referral_code for a code that is %s', (_label, code) => {
    // Prepare
    const body = bodyWith({ referrer_email: 'referrer@example.com', redeemer_email: 'bob@example.com', referral_code: code });

    // Act
    const error = thrown(() => parseWebhook(body, OPTIONS), RejectedError);

    // Assess
    expect(error).toMatchObject({ statusCode: 422, code: 'invalid_referral_code' });
  });
});
