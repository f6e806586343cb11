/**
 * Where the local stack keeps its state between processes: .local/ at the repo root (gitignored),
 * or $LOCAL_STATE_DIR. local/start.ts writes the webhook secret and stack.json there,
 * local/send-sample.ts reads them, and `npm run ops -- … --local` (ops/target.ts) reads stack.json.
 * No imports beyond node:path, so any of those can load it cheaply.
 */
import { resolve as resolvePath } from 'node:path';

/** What local/start.ts writes to stack.json while the local stack runs. */
export interface LocalStackFile {
  sqsEndpoint: string;
  dynamoEndpoint: string;
  queueUrl: string;
  deadLetterQueueUrl: string;
  tableName: string;
  region: string;
  /** The sandbox shop's settings (not secret), so `revoke --local` can deactivate its rewards. */
  sandboxShopify?: Record<string, string>;
  /** The sandbox PostHog's Query API settings, for `npm run ops -- reconcile --local` (absent with a real PostHog). */
  reconciler?: Record<string, string>;
  /** Pay on value (QUALIFY_EVENT set): what `send-sample -- --qualify` sends, and where it captures a lost one. */
  qualify?: {
    event: string;
    /** The sandbox PostHog's capture endpoint (with the reconciler on): `--qualify --lost` captures there, no webhook. */
    capture?: { url: string; apiKey: string };
  };
}

/** $LOCAL_STATE_DIR, else .local/ at the repo root. */
export const localStateDir = (): string => process.env.LOCAL_STATE_DIR?.trim() || resolvePath(__dirname, '..', '.local');

/** The local stack's endpoints and resource names (LocalStackFile), while it runs. */
export const stackFilePath = (): string => resolvePath(localStateDir(), 'stack.json');
