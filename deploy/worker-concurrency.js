'use strict';
/**
 * serverless.yml's `${file(./deploy/worker-concurrency.js):maximumConcurrency}`: the worker's SQS
 * maximumConcurrency from the stage's SHOPIFY_RESTORE_RATE param (points/s, or a plan name:
 * standard, advanced, plus, commerce_components) and the event source's batch size, by
 * lib/infra/shop-sizing.ts, the rule `npm start` uses too (tsx, a dev dependency like osls itself,
 * loads the TypeScript). The same number reaches the worker as WORKER_MAX_CONCURRENCY, so each
 * container's Shopify pacer takes its share of the budget.
 */
const tsx = require('tsx/cjs/api');

const { sizeForShop, restoreRateSetting } = tsx.require('../lib/infra/shop-sizing.ts', __filename);

function maximumConcurrency(restoreRate, batchSize) {
  return sizeForShop({ restoreRate: restoreRateSetting(String(restoreRate)), batchSize: Number(batchSize) }).maximumConcurrency;
}

module.exports.maximumConcurrency = async ({ resolveVariable }) =>
  maximumConcurrency(await resolveVariable('param:SHOPIFY_RESTORE_RATE'), await resolveVariable('self:custom.settings.batchSize'));
module.exports.compute = maximumConcurrency;
