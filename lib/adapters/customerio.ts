import { PermanentError, RetryableError } from '../domain/errors';
import type { EventSender, FulfilmentMessage } from '../domain/notify-ports';
import type { ReferralStatus, StatusMessage, StatusSender } from '../domain/status';
import { fetchWithTimeout, isRetryableStatus, type Fetch } from '../infra/http';
import { CUSTOMERIO_MAX_DATA_BYTES, CUSTOMERIO_MAX_EVENT_NAME_BYTES, CUSTOMERIO_MAX_IDENTIFIER_BYTES } from '../domain/limits';
import { redactText } from '../infra/mask';
import { parseRetryAfter } from '../infra/retry';
import { isUlid, ulidFromUuid } from '../infra/ulid';

/**
 * Customer.io Track API v1, one event per call, over plain fetch. customerio-node would retry on
 * its own and needs Node 22; here a single attempt is made and the caller's withRetry owns the
 * policy. Every failure becomes RetryableError or PermanentError, and no message carries the API
 * key, an email address or a gift-card code, because error messages end up in logs.
 */

export interface CustomerIoClientOptions {
  /** Origin, e.g. https://track.customer.io (lib/infra/config.ts picks it from CUSTOMERIO_REGION). */
  trackUrl: string;
  siteId: string;
  apiKey: string;
  fetch?: Fetch;
  /** Per-request timeout; default 10000. */
  timeoutMs?: number;
}

export interface TrackEvent {
  name: string;
  /** A ULID derived from the PostHog event uuid (ulidFromUuid): Customer.io drops a repeated id. */
  id: string;
  /** Unix seconds. Customer.io does not trigger campaigns for events older than 72 h. */
  timestamp: number;
  data: Record<string, string>;
}

// Customer.io's Track API limits (lib/domain/limits.ts, CONTRACTS.md §3) are checked here too, as the
// last guard, so an oversized event dead-letters with a clear reason instead of bouncing off a 400.
// These data keys override the message's recipient and sender: never let event data set them.
const RESERVED_DATA_KEYS = ['recipient', 'from_address', 'reply_to'] as const;
// An error text longer than this is cut: it is for a log line, not for parsing.
const MAX_ERROR_TEXT = 500;

export class CustomerIoClient implements EventSender {
  private readonly trackUrl: string;
  /** base64(site:key), the Basic credential: scrubbed from error text as the raw key is. */
  private readonly credentials: string;

  public constructor(private readonly options: CustomerIoClientOptions) {
    this.trackUrl = options.trackUrl.replace(/\/+$/, '');
    this.credentials = Buffer.from(`${options.siteId}:${options.apiKey}`).toString('base64');
  }

  /**
   * The fulfilment as the campaign's template reads it: the data keys below are what its Liquid
   * names ({{event.discountreferrer}} …, CONTRACTS.md §3), so a template change is made here.
   */
  public sendFulfilment(message: FulfilmentMessage): Promise<void> {
    return this.sendEvent(message.recipient, {
      name: message.name,
      id: message.id,
      timestamp: message.timestamp,
      data: {
        discountreferrer: message.referrerCode,
        discountreferee: message.redeemerCode,
        referreremail: message.referrerEmail,
        refereeemail: message.redeemerEmail,
      },
    });
  }

  /** Sends one event, once. Safe to repeat: the same `id` is ignored by Customer.io. */
  public async sendEvent(identifier: string, event: TrackEvent): Promise<void> {
    const body = validate(identifier, event);
    const url = `${this.trackUrl}/api/v1/customers/${encodeURIComponent(identifier)}/events`;
    // `what` names no identifier: it is an email and would land in the error message.
    const what = 'Customer.io track';
    const response = await fetchWithTimeout(
      this.options.fetch ?? fetch,
      url,
      {
        method: 'POST',
        headers: { Authorization: `Basic ${this.credentials}`, 'Content-Type': 'application/json', Accept: 'application/json' },
        body,
        // Never followed (below): Node's fetch re-sends a 301/302 POST as a bodyless GET, whose
        // 200 would read as "sent". With 'manual' undici hands back the 3xx itself (not the
        // browser's status-0 opaque redirect), so nothing, credentials included, goes elsewhere.
        redirect: 'manual',
      },
      this.options.timeoutMs ?? 10_000,
      what,
    );
    // The body, or '' if it cannot be read: the status alone decides what happens next.
    const text = await response.text().catch(() => '');
    const { ok, status } = response;
    if (ok) return;
    if (isRetryableStatus(status)) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      throw new RetryableError(`${what}: HTTP ${status}`, { retryAfterMs, outage: status >= 500 });
    }
    if (status >= 300 && status < 400) {
      // The Location's origin only: its path may carry the identifier (an email).
      throw new PermanentError(
        `customerio_http_${status}`,
        `${what}: HTTP ${status} redirect ${redirectTarget(response, this.trackUrl)}, not followed: ` +
          'point CUSTOMERIO_REGION (or CUSTOMERIO_TRACK_URL) at the host that answers for the workspace',
      );
    }
    if (status === 401 || status === 403) {
      throw new PermanentError('customerio_auth', `${what}: HTTP ${status}, check the site id and API key`);
    }
    const detail = redactText(errorText(text), [identifier, ...Object.values(event.data)], [this.options.apiKey, this.credentials]);
    const suffix = detail ? `: ${detail}` : '';
    if (status === 400) throw new PermanentError('customerio_rejected', `Customer.io rejected the event${suffix}`);
    throw new PermanentError(`customerio_http_${status}`, `${what}: HTTP ${status}${suffix}`);
  }
}

/**
 * Where a referral stands, as the status campaign reads it (docs/SETUP.md, "Tell both people where
 * their reward stands"): one event named CUSTOMERIO_STATUS_EVENT on the redeemer's profile, sent
 * through the same client as the fulfilment (same limits, error classification and redaction).
 * Its data is built key by key from the message, so nothing else, a reward code above all, can
 * travel in it: codes go only in the fulfilment event.
 */
export class CustomerIoStatusSender implements StatusSender {
  public constructor(
    private readonly client: Pick<CustomerIoClient, 'sendEvent'>,
    /** CUSTOMERIO_STATUS_EVENT. */
    private readonly eventName: string,
    /** Stamps the event: Customer.io starts campaigns only for events under 72 h old, so a late retry must say "now". */
    private readonly now: () => number = Date.now,
  ) {}

  public async sendStatus(message: StatusMessage): Promise<void> {
    const event: TrackEvent = {
      name: this.eventName,
      id: statusEventId(message.eventId, message.status),
      timestamp: Math.floor(this.now() / 1000),
      // The campaign's data keys ({{event.status}}, {{event.qualifyby}} …): dates as YYYY-MM-DD in UTC, only those the status has.
      data: { status: message.status, referreremail: message.referrerEmail, refereeemail: message.redeemerEmail },
    };
    if (message.qualifyBy !== undefined) event.data.qualifyby = utcDate(message.qualifyBy, 'qualifyBy');
    if (message.paysAfter !== undefined) event.data.paysafter = utcDate(message.paysAfter, 'paysAfter');
    if (message.reason !== undefined) event.data.reason = message.reason;
    await this.client.sendEvent(message.recipient, event);
  }
}

/**
 * The status event's id: a ULID derived from the referral and the status, the same on every retry,
 * so Customer.io processes each status of a referral once ("If two events contain the same id, we
 * won't process the event multiple times": customer.io/docs/journeys/events/#deduplicating-events,
 * quoted in github.com/customerio/customerio-ruby issue #107; CONTRACTS.md §3), and different from
 * the fulfilment's id and from every other status's, so one status never hides another.
 */
export function statusEventId(eventId: string, status: ReferralStatus): string {
  return ulidFromUuid(eventId, `customerio-status:${status}`);
}

function utcDate(epochMs: number, field: string): string {
  const date = new Date(epochMs);
  if (Number.isNaN(date.getTime()))
    throw new PermanentError('customerio_invalid_event', `Customer.io status event: ${field} is not a time`);
  return date.toISOString().slice(0, 10);
}

/** Refuses, before any request, what Customer.io would reject or misuse. Returns the JSON body. */
function validate(identifier: string, event: TrackEvent): string {
  const invalid = (message: string) => new PermanentError('customerio_invalid_event', `Customer.io event: ${message}`);
  for (const [what, value, max] of [
    ['identifier', identifier, CUSTOMERIO_MAX_IDENTIFIER_BYTES],
    ['name', event.name, CUSTOMERIO_MAX_EVENT_NAME_BYTES],
  ] as const) {
    if (!value) throw invalid(`empty ${what}`);
    if (Buffer.byteLength(value) > max) throw invalid(`${what} longer than ${max} bytes`);
  }
  // Without a valid id Customer.io cannot dedupe, and a retry could mail twice.
  if (!isUlid(event.id)) throw invalid('id is not a ULID');
  // Milliseconds passed by mistake would be a date far in the future; seconds are ~1.7e9.
  if (!Number.isInteger(event.timestamp) || event.timestamp <= 0 || event.timestamp >= 1e11) {
    throw invalid('timestamp is not unix seconds');
  }
  const reserved = RESERVED_DATA_KEYS.filter((key) => Object.prototype.hasOwnProperty.call(event.data, key));
  if (reserved.length > 0) throw invalid(`reserved data keys: ${reserved.join(', ')}`);
  const body = JSON.stringify({ name: event.name, data: event.data, id: event.id, timestamp: event.timestamp });
  if (Buffer.byteLength(body) > CUSTOMERIO_MAX_DATA_BYTES) throw invalid(`body larger than ${CUSTOMERIO_MAX_DATA_BYTES} bytes`);
  return body;
}

/** Where a redirect points, as an origin ("to https://track-eu.customer.io"), or that it names nowhere. */
function redirectTarget(response: Response, trackUrl: string): string {
  const location = response.headers.get('location');
  if (!location) return 'without a Location';
  try {
    return `to ${new URL(location, trackUrl).origin}`;
  } catch {
    return 'to an unreadable Location';
  }
}

/** `meta.errors` (or `meta.error`) joined, else the raw text; cut to a log-friendly length. */
function errorText(text: string): string {
  let out = text;
  try {
    const meta = (JSON.parse(text) as { meta?: { errors?: unknown; error?: unknown } } | null)?.meta;
    if (Array.isArray(meta?.errors)) out = meta.errors.map(String).join('; ');
    else if (typeof meta?.error === 'string') out = meta.error;
  } catch {
    // Not JSON (a proxy's HTML page, say): keep the raw text.
  }
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > MAX_ERROR_TEXT ? `${out.slice(0, MAX_ERROR_TEXT)}…` : out;
}
