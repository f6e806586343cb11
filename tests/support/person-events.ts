import { randomUUID } from 'node:crypto';
import type { LifecycleRecord } from '../../lib/adapters/dynamodb/ledger';
import { signPersonEvent } from '../../lib/domain/vouch';
import type { Pipeline } from './pipeline';

/**
 * Person events (QUALIFY_EVENT, REVOKE_EVENT) as the app's backend captures them and PostHog's
 * webhook delivers them, for the pay-on-value tests that run the real pipeline (tests/support/pipeline.ts).
 */

/** A PostHog person: who a person event is about. */
export interface Who {
  personId?: string;
  distinctId: string;
  email: string;
}

export interface PersonEventOptions {
  uuid?: string;
  /** When it happened, epoch ms (default now). */
  at?: number;
  /** Signed with the app's key (default), unsigned, or signed with another key. */
  signature?: 'valid' | 'none' | 'forged';
  /** Properties besides the signature. */
  properties?: Record<string, unknown>;
}

/** The redeemer of a referralBody, as PostHog names them. */
export function redeemerOf(body: Record<string, unknown>): Who & { capturedAt: number } {
  const event = body.event as { distinct_id: string; timestamp: string };
  const person = body.person as { id: string; properties: { email: string } };
  return { personId: person.id, distinctId: event.distinct_id, email: person.properties.email, capturedAt: Date.parse(event.timestamp) };
}

/** A person event's webhook body, signed as the app's backend signs it (over its name, distinct id and uuid only), or not, or forged. */
export function personEventBody(name: string, who: Who, key: string, options: PersonEventOptions = {}) {
  const uuid = options.uuid ?? randomUUID();
  const signed = {
    valid: signPersonEvent(key, { eventName: name, distinctId: who.distinctId, eventId: uuid }),
    forged: signPersonEvent('not-the-app-key-0123456789abcdef-0123456789', { eventName: name, distinctId: who.distinctId, eventId: uuid }),
    none: undefined,
  }[options.signature ?? 'valid'];
  return {
    uuid,
    body: {
      event: {
        uuid,
        event: name,
        distinct_id: who.distinctId,
        properties: { ...options.properties, ...(signed ? { referral_signature: signed } : {}) },
        timestamp: new Date(options.at ?? Date.now()).toISOString(),
      },
      person: { ...(who.personId ? { id: who.personId } : {}), properties: { email: who.email } },
    },
  };
}

/**
 * The steps a test takes on the pipeline `current()` returns (a describe's `let pipeline`, set by
 * each test's start): post a body that must be accepted (202), read a referral's record, build a
 * person event signed with the pipeline's key (with `defaults` under each call's options).
 */
export function pipelineSteps(current: () => Pipeline, defaults: PersonEventOptions = {}) {
  return {
    send: async (body: unknown): Promise<void> => {
      const response = await current().post(body);
      expect(response.statusCode).toBe(202);
    },
    recordOf: async (uuid: string) => (await current().record(uuid)) as LifecycleRecord | undefined,
    event: (name: string, who: Who, options: PersonEventOptions = {}) =>
      personEventBody(name, who, current().signingKey, { ...defaults, ...options }),
  };
}
