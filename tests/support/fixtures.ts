import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Referral } from '../../lib/domain/referral';

/** PostHog's default webhook body: the repo's local copy when present, else the shared fixture beside the repo. */
export function loadDefaultBody(): string {
  const local = path.resolve(__dirname, '../../local/sample-event.json');
  const shared = path.resolve(__dirname, '../../../shared/fixtures/posthog-webhook-default.json');
  return readFileSync(existsSync(local) ? local : shared, 'utf8');
}

/** A queue message as ingest writes it (lib/domain/referral.ts), for tests of what reads one. */
export const SAMPLE_REFERRAL: Referral = {
  v: 1,
  eventId: '0190f1d2-7c1e-7b3a-9d2f-3a4b5c6d7e8f',
  eventName: 'referral redeemed',
  referrerEmail: 'ada@example.com',
  redeemerEmail: 'grace@example.org',
  customerEmail: 'grace@example.org',
  distinctId: 'person-42',
  occurredAt: '2026-11-25T10:00:00.000Z',
};
