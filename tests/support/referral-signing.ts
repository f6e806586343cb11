/**
 * The REFERRAL_SIGNING_KEY of every test and soak worker: tests/support/env.ts puts it in the test
 * environment, and the harness (tests/support/pipeline.ts) gives it to its worker and signs the
 * referrals it sends with it (local/vouch.ts), as the app's backend would.
 */
export const TEST_REFERRAL_SIGNING_KEY = 'test-referral-signing-key-0123456789abcdef';
