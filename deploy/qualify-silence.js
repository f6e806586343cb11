'use strict';
/**
 * serverless.yml's `${file(./deploy/qualify-silence.js):hours}`: how many one-hour periods
 * QualifyingEventsSilentAlarm looks at, from the stage's QUALIFY_SILENCE param, read by
 * lib/infra/duration.ts (as deploy/reconcile-schedule.js reads RECONCILE_INTERVAL). Whole hours,
 * 1h to 7d: an alarm's periods times its period may not exceed 7 days, and with a period under an
 * hour not 1 day ("An alarm's total current evaluation period can be no longer than seven days",
 * PutMetricAlarm API reference, Period).
 */
const tsx = require('tsx/cjs/api');

const { parseDuration } = tsx.require('../lib/infra/duration.ts', __filename);

const HOUR_MS = 3_600_000;
const MAX_HOURS = 7 * 24;

function silenceHours(text) {
  const ms = parseDuration(text);
  if (ms === undefined || ms < HOUR_MS || ms % HOUR_MS !== 0 || ms / HOUR_MS > MAX_HOURS) {
    throw new Error(`QUALIFY_SILENCE must be whole hours from 1h to 7d (e.g. 48h, 2d): got ${JSON.stringify(text)}`);
  }
  return ms / HOUR_MS;
}

module.exports.silenceHours = silenceHours;
module.exports.hours = async ({ resolveVariable }) => silenceHours(await resolveVariable('param:QUALIFY_SILENCE'));
