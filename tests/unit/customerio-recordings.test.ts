/**
 * Our Customer.io client (lib/adapters/customerio.ts) against the answers Customer.io's official
 * Node client commits as fixtures (tests/support/customerio-recordings.ts says which were recorded
 * live and which its authors synthesised, and where each is): each is done, retryable or
 * permanent, and a redirect is never followed. Injected fetch, no network; the same redirects over
 * real HTTP, with Node's own fetch, are in tests/integration/customerio-redirects.test.ts.
 */
import { CustomerIoClient, type TrackEvent } from '../../lib/adapters/customerio';
import { PermanentError, RetryableError } from '../../lib/domain/errors';
import type { Fetch } from '../../lib/infra/http';
import { ulidFromUuid } from '../../lib/infra/ulid';
import { ACCEPTED, NETWORK_FAILURES, ODD_SUCCESSES, REDIRECTS, type Recording } from '../support/customerio-recordings';
import { failure } from '../support/failure';

const TRACK_URL = 'https://track.customer.io';
const SITE_ID = 'recordings-test-site-id-0123456789abcdef';
const API_KEY = 'recordings-test-api-key-0123456789abcdef';
const EMAIL = 'redeemer@example.com';
const TIMEOUT_MS = 50;

interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch that answers every call with the recording, as Node's fetch would surface it. */
function replaying(recording: Recording): { fetch: Fetch; calls: Call[] } {
  const calls: Call[] = [];
  const { answer } = recording;
  const fetch = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    switch (answer.kind) {
      case 'response':
        // A null body for the statuses that cannot have one (204, and 3xx as recorded, with no body).
        return new Response(answer.body === '' ? null : answer.body, { status: answer.status, headers: answer.headers });
      case 'network-error':
        throw new TypeError('fetch failed', { cause: Object.assign(new Error(answer.message), { code: answer.code }) });
      case 'too-slow':
        return new Promise<Response>((resolve, reject) => {
          const timer = setTimeout(() => resolve(new Response('{}', { status: 200 })), answer.delayMs);
          init.signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(init.signal?.reason);
          });
        });
    }
  }) as unknown as Fetch;
  return { fetch, calls };
}

const event = (): TrackEvent => ({
  name: 'pyramid_scheme_fulfillment',
  id: ulidFromUuid('0190a5c4-8f1e-7b3a-9c2d-1e2f3a4b5c6d'),
  timestamp: 1_780_000_000,
  data: { discountreferrer: 'REFERRERCODE1', discountreferee: 'REDEEMERCODE1' },
});

function send(recording: Recording) {
  const { fetch, calls } = replaying(recording);
  const client = new CustomerIoClient({ trackUrl: TRACK_URL, siteId: SITE_ID, apiKey: API_KEY, fetch, timeoutMs: TIMEOUT_MS });
  return { sent: client.sendEvent(EMAIL, event()), calls };
}

describe("Customer.io's recorded answers, as our client classifies them", () => {
  it(`counts the live 200 with body {} (${ACCEPTED.source.path}) as sent`, async () => {
    // Prepare
    const { sent, calls } = send(ACCEPTED);

    // Act
    const result = await sent;

    // Assess
    expect(result).toBeUndefined();
    expect(calls).toHaveLength(1);
  });

  it.each(ODD_SUCCESSES.map((recording) => [recording.scenario, recording] as const))(
    'counts a 2xx whose body is not JSON (%s) as sent: the status is the answer',
    async (_scenario, recording) => {
      // Prepare
      const { sent } = send(recording);

      // Act
      const result = await sent;

      // Assess
      expect(result).toBeUndefined();
    },
  );

  it.each(NETWORK_FAILURES.map((recording) => [recording.scenario, recording] as const))(
    'retries a connection that failed or did not answer in time (%s): the event id makes a resend safe',
    async (_scenario, recording) => {
      // Prepare
      const { sent } = send(recording);

      // Act
      const error = await failure(sent);

      // Assess
      expect(error).toBeInstanceOf(RetryableError);
    },
  );

  it.each(REDIRECTS.map((recording) => [recording.scenario, recording] as const))(
    'dead-letters a redirect (%s) with the status and where it pointed, without following it',
    async (_scenario, recording) => {
      // Prepare
      const { sent, calls } = send(recording);
      const { status, headers } = recording.answer;

      // Act
      const error = await failure(sent);

      // Assess
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).reason).toBe(`customerio_http_${status}`);
      expect(error.message).toContain(`HTTP ${status} redirect to ${new URL(headers.location!).origin}, not followed`);
      expect(error.message).toContain('CUSTOMERIO_REGION');
      expect(calls.map((call) => [call.url, call.init.redirect])).toEqual([
        [`${TRACK_URL}/api/v1/customers/${encodeURIComponent(EMAIL)}/events`, 'manual'],
      ]);
    },
  );

  it("names only a redirect's origin, never its path, which may carry the customer's email", async () => {
    // Prepare: a 308 to the same path on another host, as a moved endpoint would send
    const { sent } = send({
      scenario: 'redirect to our own path',
      source: REDIRECTS[3]!.source,
      answer: {
        kind: 'response',
        status: 308,
        headers: { location: `https://track-eu.customer.io/api/v1/customers/${encodeURIComponent(EMAIL)}/events` },
        body: '',
      },
    });

    // Act
    const error = await failure(sent);

    // Assess
    expect(error.message).toContain('redirect to https://track-eu.customer.io,');
    expect(error.message).not.toContain('redeemer');
    expect(error.message).not.toContain('/api/');
  });
});
