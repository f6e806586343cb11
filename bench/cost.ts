/**
 * 5. Cost per 1M referrals, from what this run measured (durations, requests, capacity units, log
 * bytes) and list prices. Free tiers are ignored (list prices throughout).
 */
import type { SectionResult } from './report';
import { fmt, fmtInt } from './stats';

const SECTION = '5. Cost per 1M referrals';

/** us-east-1 list prices, USD. */
export const PRICES_AS_OF = 'June 2025, us-east-1, check before relying';
/** Lambda, arm64, first 7.5 billion GB-s a month. */
export const LAMBDA_ARM_USD_PER_GB_SECOND = 0.0000133334;
export const LAMBDA_USD_PER_MILLION_REQUESTS = 0.2;
/** API Gateway HTTP API, first 300 million requests a month (metered per 512 KB). */
export const HTTP_API_USD_PER_MILLION_REQUESTS = 1.0;
/** SQS standard queue (per 64 KB chunk). */
export const SQS_USD_PER_MILLION_REQUESTS = 0.4;
/** DynamoDB on-demand (after the November 2024 price cut). */
export const DYNAMODB_USD_PER_MILLION_WRITE_UNITS = 0.625;
export const DYNAMODB_USD_PER_MILLION_READ_UNITS = 0.125;
export const DYNAMODB_USD_PER_GB_MONTH = 0.25;
export const SECRETS_MANAGER_USD_PER_SECRET_MONTH = 0.4;
export const SECRETS_MANAGER_USD_PER_10K_CALLS = 0.05;
/** CloudWatch Logs ingestion, standard class. */
export const CLOUDWATCH_LOGS_USD_PER_GB = 0.5;
/** Zapier Professional, monthly billing, entry tier (750 tasks/month). */
export const ZAPIER_PROFESSIONAL_USD_PER_MONTH = 29.99;
export const ZAPIER_PROFESSIONAL_TASKS_PER_MONTH = 750;
/** Tasks the seed zap uses per referral, as the issue counts them (an assumption, not measured). */
export const ZAPIER_TASKS_PER_REFERRAL = 5;

export const INGEST_MEMORY_MB = 256;
export const WORKER_MEMORY_MB = 512;
/** START/END/REPORT lines Lambda itself writes per invocation (assumption, ~350 bytes). */
export const LAMBDA_PLATFORM_LOG_BYTES = 350;
/** Secrets Manager look-ups: containers kept warm all month, each re-reading the secret every 300 s (lib/infra/secrets.ts). */
export const WARM_CONTAINERS = 3;
const SECRET_MAX_AGE_SECONDS = 300;
const SECONDS_PER_MONTH = 30 * 24 * 3600;

export interface CostInputs {
  /** Ingest handler p50, ms (section 2). */
  ingestMs: number;
  /** Worker time per referral when each arrives alone (section 4). */
  workerMsTrickle: number;
  /** Worker time per referral while draining a backlog, batches of 10, paced (section 3). */
  workerMsBacklog: number;
  /** Per referral, measured in section 4 (one referral per batch). */
  writeUnits: number;
  readUnits: number;
  sqsRequests: number;
  /** Bytes the handlers print per referral (ingest + worker). */
  logBytes: number;
}

interface Line {
  item: string;
  /** What is bought for 1M referrals, in words. */
  quantity: string;
  usd: number;
}

export function benchCost(inputs: CostInputs): SectionResult {
  const million = 1_000_000;
  const gbSeconds = (ms: number, mb: number) => (Math.max(1, Math.ceil(ms)) / 1000) * (mb / 1024);
  const lines: Line[] = [
    {
      item: 'Lambda ingest: requests + duration',
      quantity: `1 invocation per referral, ${Math.max(1, Math.ceil(inputs.ingestMs))} ms billed at ${INGEST_MEMORY_MB} MB`,
      usd: LAMBDA_USD_PER_MILLION_REQUESTS + million * gbSeconds(inputs.ingestMs, INGEST_MEMORY_MB) * LAMBDA_ARM_USD_PER_GB_SECOND,
    },
    {
      item: 'Lambda worker: requests + duration',
      quantity: `1 invocation per referral, ${Math.ceil(inputs.workerMsTrickle)} ms billed at ${WORKER_MEMORY_MB} MB`,
      usd: LAMBDA_USD_PER_MILLION_REQUESTS + million * gbSeconds(inputs.workerMsTrickle, WORKER_MEMORY_MB) * LAMBDA_ARM_USD_PER_GB_SECOND,
    },
    {
      item: 'API Gateway HTTP API',
      quantity: '1 request per referral',
      usd: HTTP_API_USD_PER_MILLION_REQUESTS,
    },
    {
      item: 'SQS',
      quantity: `${fmt(inputs.sqsRequests, 1)} requests per referral (send, receive, delete)`,
      usd: inputs.sqsRequests * SQS_USD_PER_MILLION_REQUESTS,
    },
    {
      item: 'DynamoDB on-demand',
      quantity: `${fmt(inputs.writeUnits, 1)} WRU + ${fmt(inputs.readUnits, 1)} RRU per referral`,
      usd: inputs.writeUnits * DYNAMODB_USD_PER_MILLION_WRITE_UNITS + inputs.readUnits * DYNAMODB_USD_PER_MILLION_READ_UNITS,
    },
    {
      item: 'Secrets Manager (cached 300 s)',
      quantity: `1 secret-month + ${WARM_CONTAINERS} warm containers × 1 call per 300 s for a month (1M referrals taken as one month's traffic)`,
      usd:
        SECRETS_MANAGER_USD_PER_SECRET_MONTH +
        ((WARM_CONTAINERS * SECONDS_PER_MONTH) / SECRET_MAX_AGE_SECONDS / 10_000) * SECRETS_MANAGER_USD_PER_10K_CALLS,
    },
    {
      item: 'CloudWatch Logs ingestion',
      quantity: `${fmtInt(inputs.logBytes + 2 * LAMBDA_PLATFORM_LOG_BYTES)} bytes per referral (${fmtInt(inputs.logBytes)} measured + Lambda's own lines)`,
      usd: ((million * (inputs.logBytes + 2 * LAMBDA_PLATFORM_LOG_BYTES)) / 1024 ** 3) * CLOUDWATCH_LOGS_USD_PER_GB,
    },
  ];
  const total = lines.reduce((sum, line) => sum + line.usd, 0);
  const backlogWorker =
    LAMBDA_USD_PER_MILLION_REQUESTS / 10 +
    ((million * gbSeconds(inputs.workerMsBacklog * 10, WORKER_MEMORY_MB)) / 10) * LAMBDA_ARM_USD_PER_GB_SECOND;
  const zapierPerTask = ZAPIER_PROFESSIONAL_USD_PER_MONTH / ZAPIER_PROFESSIONAL_TASKS_PER_MONTH;
  const zapier = million * ZAPIER_TASKS_PER_REFERRAL * zapierPerTask;
  const usd = (value: number) => `$${fmt(value, 2)}`;

  return {
    rows: [
      {
        id: 'cost.aws',
        section: SECTION,
        measure: 'AWS, from measured durations, requests and capacity units',
        value: usd(total),
        reference: `Zapier, ${ZAPIER_TASKS_PER_REFERRAL} tasks per referral: ${usd(zapier)}`,
        ratio: total / zapier,
      },
      {
        id: 'cost.zapier',
        section: SECTION,
        measure: `Zapier: ${fmtInt(ZAPIER_TASKS_PER_REFERRAL * million)} tasks at the entry Professional price`,
        value: usd(zapier),
        reference: `$${ZAPIER_PROFESSIONAL_USD_PER_MONTH} / ${ZAPIER_PROFESSIONAL_TASKS_PER_MONTH} tasks = $${fmt(zapierPerTask, 4)} per task`,
      },
    ],
    notes: [
      `Prices as of ${PRICES_AS_OF} (named constants in bench/cost.ts); free tiers ignored; ingest 256 MB and worker 512 MB, arm64. ` +
        'Durations are the loopback ones measured here: in AWS, SQS and DynamoDB round trips are slower, which matters for the worker (sequential ledger writes) and changes cents for ingest (its request fee dominates).',
      ...lines.map((line) => `${line.item}: ${line.quantity} → ${usd(line.usd)} per 1M referrals.`),
      `Worker billed as one invocation per referral, as when referrals arrive one at a time (the common case). Draining a backlog in batches of 10, a container waits on the Shopify pacer and is billed for it: ${fmt(inputs.workerMsBacklog, 0)} ms per referral measured, ${usd(backlogWorker)} per 1M instead.`,
      `Not per referral: the event source mapping's empty long polls (~5 pollers × 3/min ≈ 0.65M SQS requests ≈ $0.26 a month), ledger storage (~1 KB per referral, $${DYNAMODB_USD_PER_GB_MONTH}/GB-month, never expires) and point-in-time recovery, the EMF custom metrics ($0.30 per metric-month), and INIT time of cold starts (billed since August 2025; see the module-load rows for its size).`,
      `Zapier assumption: ${ZAPIER_TASKS_PER_REFERRAL} tasks per referral (the issue's count for the seed zap), priced at the entry Professional tier ($${ZAPIER_PROFESSIONAL_USD_PER_MONTH}/month for ${ZAPIER_PROFESSIONAL_TASKS_PER_MONTH} tasks, monthly billing). Higher tiers cost less per task and millions of tasks a month are quoted individually, so this is an upper bound; even at a tenth of the per-task price Zapier costs ${fmtInt(zapier / 10 / total)}× the AWS figure.`,
    ],
    data: { total, zapier },
  };
}
