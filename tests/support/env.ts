import { TEST_REFERRAL_SIGNING_KEY } from './referral-signing';

// Tests never reach AWS: fake credentials, a fixed region, and the EMF metrics kept off stdout.
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
process.env.AWS_REGION ??= 'us-east-1';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
// Lambda runs Node 22; this machine's Node 20 is still supported by the SDK versions we pin.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// The worker refuses unsigned referrals by default: the key the harnesses sign with (tests/support/referral-signing.ts).
process.env.REFERRAL_SIGNING_KEY ??= TEST_REFERRAL_SIGNING_KEY;
