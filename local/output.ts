/** What `npm start` prints: its banner and one line per reward, event and webhook, codes and emails masked. */
import { maskCode, maskEmail } from '../lib/infra/mask';
import { parseGiftCardNote } from '../lib/domain/rewards';
import type { FakeTrackedEvent } from './sandbox/customerio';
import type { FakeGiftCard } from './sandbox/shopify';

export const WEBHOOK_PATH = '/webhooks/posthog';
export const REFERRAL_CODES_PATH = '/referral-codes';

export const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

export function printCard(card: FakeGiftCard): void {
  const note = parseGiftCardNote(card.note);
  const forWhom = note ? `for the ${note.role}, event ${note.eventId}` : '';
  say(`🎁 gift card ${maskCode(card.code)} created in the Shopify sandbox: ${card.initialValue} ${card.currencyCode} ${forWhom}`.trimEnd());
}

export function printEvent(event: FakeTrackedEvent): void {
  const data = event.data as Record<string, unknown>;
  const text = (key: string): string => (typeof data[key] === 'string' ? (data[key] as string) : '');
  // A status event (CUSTOMERIO_STATUS_EVENT) carries no codes: where the referral stands, and its date.
  if (text('status')) {
    const date = text('qualifyby') ? `, qualify by ${text('qualifyby')}` : text('paysafter') ? `, pays after ${text('paysafter')}` : '';
    const reason = text('reason') ? ` (${text('reason')})` : '';
    say(
      `📣 Customer.io event "${event.name}" for ${maskEmail(event.identifier)} (id ${event.id}): ` +
        `status ${text('status')}${date}${reason}; referrer ${maskEmail(text('referreremail'))}`,
    );
    return;
  }
  say(
    `✉️  Customer.io event "${event.name}" for ${maskEmail(event.identifier)} (id ${event.id}): ` +
      `referrer ${maskEmail(text('referreremail'))} gets ${maskCode(text('discountreferrer'))}, ` +
      `referee ${maskEmail(text('refereeemail'))} gets ${maskCode(text('discountreferee'))}`,
  );
}

export function printRefusal(eventId: string, reason: string): void {
  say(`🚫 referral ${eventId} refused: REJECTED ${reason}; no gift card, no Customer.io event`);
}

export function printBanner(info: {
  url: string;
  webhookSecret: string;
  secretGenerated: boolean;
  secretFile: string;
  signingKey: string;
  signingKeyGenerated: boolean;
  signingKeyFile: string;
  /** REFERRAL_SIGNATURES: `required` or `off`. */
  signatures: string;
  /** The sample event signed with this run's key, for the curl. */
  signedSampleFile: string;
  appApiKey: string;
  appApiKeyGenerated: boolean;
  appApiKeyFile: string;
  shopify: string;
  shopifyAuth: string;
  shopifyApi: string;
  customerio: string;
  queue: string;
  table: string;
  reward: string;
  reconciler: string;
  /** Pay on value (QUALIFY_EVENT set): what a referral waits for. */
  qualify?: { event: string; within: string; where?: string; catchUp: boolean };
  loseReferral?: string;
  ignoredSecretId?: string;
}): void {
  const portPrefix = info.url.endsWith(':3000') ? '' : `PORT=${new URL(info.url).port} `;
  const secretLine = info.secretGenerated
    ? `${info.webhookSecret}   (random for this run, saved to ${info.secretFile} for send-sample; set WEBHOOK_SECRET to choose one)`
    : `from $WEBHOOK_SECRET`;
  const bearer = info.secretGenerated ? info.webhookSecret : '$WEBHOOK_SECRET';
  const sendEnv = `${portPrefix}${info.secretGenerated ? '' : 'WEBHOOK_SECRET=… '}${info.signingKeyGenerated ? '' : 'REFERRAL_SIGNING_KEY=… '}`;
  say();
  say('──────────────────────────────────────────────────────────────────────────────');
  say(' referral-rewards: local stack is up (same handlers as on Lambda)');
  say('──────────────────────────────────────────────────────────────────────────────');
  say(` Webhook      POST ${info.url}${WEBHOOK_PATH}`);
  say(` Codes        POST ${info.url}${REFERRAL_CODES_PATH}   (your app's backend asks for a referrer's code)`);
  say(` Health       GET  ${info.url}/health`);
  say(` Secret       ${secretLine}`);
  say(
    ` Signing key  ${
      info.signingKeyGenerated
        ? `${info.signingKey}   (random for this run, saved to ${info.signingKeyFile} for send-sample; set REFERRAL_SIGNING_KEY to choose one)`
        : 'from $REFERRAL_SIGNING_KEY'
    }`,
  );
  say(
    `              REFERRAL_SIGNATURES=${info.signatures}: ${
      info.signatures === 'off'
        ? '⚠️  unsigned referrals are PAID (anyone with the PostHog project key can forge one)'
        : "a referral without the app's signature is refused"
    }`,
  );
  say(
    ` App key      ${
      info.appApiKeyGenerated
        ? `${info.appApiKey}   (APP_API_KEY, for POST ${REFERRAL_CODES_PATH}; random for this run, saved to ${info.appApiKeyFile})`
        : 'from $APP_API_KEY'
    }`,
  );
  say(` Shopify      ${info.shopify}`);
  say(`              auth: ${info.shopifyAuth}; ${info.shopifyApi}`);
  say(` Customer.io  ${info.customerio}`);
  say(` Reward       ${info.reward}`);
  say(` Queue        ${info.queue}`);
  say(` Ledger       ${info.table} (DynamoDB, in memory: gone when you stop)`);
  say(` Reconciler   ${info.reconciler}`);
  if (info.qualify) {
    say(
      ` Pay on value a referral waits (⏳) for its redeemer's "${info.qualify.event}" within ${info.qualify.within}` +
        `${info.qualify.where ? ` where ${info.qualify.where}` : ''}, then is paid`,
    );
  }
  if (info.ignoredSecretId) say(` Note         SECRET_ID is ignored locally: secrets come from env vars`);
  say();
  say(' Try it, in another terminal:');
  say(`   ${sendEnv}npm run send-sample              # a new referral: 2 gift cards + 1 Customer.io event`);
  say(`   ${sendEnv}npm run send-sample -- --repeat  # the same event again: acknowledged, nothing new`);
  say(`   ${sendEnv}npm run send-sample -- --unsigned  # a forged event, no signature: refused (🚫), nothing issued`);
  say(
    `   ${sendEnv}${info.appApiKeyGenerated ? '' : 'APP_API_KEY=… '}npm run send-sample -- --code  # the referrer's code first, then a referral naming it`,
  );
  if (info.qualify) {
    say(
      `   ${sendEnv}npm run send-sample -- --qualify   # the last sample's redeemer sends "${info.qualify.event}": the waiting referral is paid`,
    );
    if (info.qualify.catchUp)
      say(
        `   ${sendEnv}npm run send-sample -- --qualify --lost   # the same, captured in PostHog only: the reconciler's catch-up finds it`,
      );
  }
  say(`   curl -i -X POST ${info.url}${WEBHOOK_PATH} \\`);
  say(`     -H "Authorization: Bearer ${bearer}" -H 'Content-Type: application/json' \\`);
  say(`     --data @${info.signedSampleFile}   # the sample, signed with this run's key`);
  say();
  if (info.loseReferral) {
    say(' A referral the webhook never delivers (the app captured it; the reconciler pays it):');
    say(`   ${info.loseReferral}`);
    say();
  }
  say(' On call:     npm run ops -- dlq list --local   (also: status <eventId>, redrive, reconcile)');
  say();
  say(' Below: 📨 webhook answers, 🎁 gift cards, ✉️  Customer.io events, 🚫 refusals, ☠️  DLQ changes,');
  say(" and the handlers' own JSON logs (POWERTOOLS_LOG_LEVEL=DEBUG for more, WARN for less).");
  say(' Ctrl+C stops everything.');
  say('──────────────────────────────────────────────────────────────────────────────');
  say();
}
