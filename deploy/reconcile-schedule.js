'use strict';
/**
 * serverless.yml's `${file(./deploy/reconcile-schedule.js):rate}`: the reconciler's EventBridge
 * schedule from the stage's RECONCILE_INTERVAL param, read by lib/infra/duration.ts (the one parser of
 * every duration setting; tsx, a dev dependency like osls itself, loads the TypeScript).
 * EventBridge rates are whole minutes, singular for 1 (`rate(1 minute)`), plural above
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html).
 */
const tsx = require('tsx/cjs/api');

const { parseDuration } = tsx.require('../lib/infra/duration.ts', __filename);

function rateExpression(text) {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 60000 || ms % 60000 !== 0) {
    throw new Error(`RECONCILE_INTERVAL must be whole minutes, at least 1m (e.g. 15m, 2h): got ${JSON.stringify(text)}`);
  }
  const minutes = ms / 60000;
  return minutes === 1 ? 'rate(1 minute)' : `rate(${minutes} minutes)`;
}

module.exports.rateExpression = rateExpression;
module.exports.rate = async ({ resolveVariable }) => rateExpression(await resolveVariable('param:RECONCILE_INTERVAL'));
