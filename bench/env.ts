/**
 * Imported first by bench/run.ts, before any handler module reads its environment: the handlers
 * build their logger and metrics at import. Logging and metrics stay as deployed (INFO, EMF on);
 * bench/logs.ts swallows what they print during a measurement and counts the bytes instead, so the
 * cost of writing log lines is in the timings and their volume is in the cost model.
 */
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.POWERTOOLS_SERVICE_NAME = 'referral-rewards';
process.env.POWERTOOLS_METRICS_NAMESPACE = 'ReferralRewards';
process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
delete process.env.POWERTOOLS_DEV;
