import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** PostHog's default webhook body: the repo's local copy when present, else the shared fixture beside the repo. */
export function loadDefaultBody(): string {
  const local = path.resolve(__dirname, '../../local/sample-event.json');
  const shared = path.resolve(__dirname, '../../../shared/fixtures/posthog-webhook-default.json');
  return readFileSync(existsSync(local) ? local : shared, 'utf8');
}
