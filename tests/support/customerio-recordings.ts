/**
 * What Customer.io's Track API answers, as facts taken from the official Node client's committed
 * fixtures: github.com/customerio/customerio-node, test/fixtures/responses/*.json (read at
 * v5.0.1, commit 415363a). Each fixture says how it was made: `"kind": "live"` ones were recorded
 * by test/fixtures/record.ts against a real workspace; `"kind": "synthesized"` ones were written
 * by the SDK's authors to pin their client's behaviour (redirects, network errors, odd bodies) and
 * are not Customer.io's own answers. Both are kept here with that label, because what our client
 * must do with a redirect or a reset does not depend on who produced it.
 *
 * The redirect and odd-body fixtures were made for other Track calls (identify's PUT
 * /api/v1/customers/{id}); the answer (status, Location) is what matters here, and is replayed on
 * our call (POST /api/v1/customers/{id}/events). Only the facts are copied (status, headers, body),
 * none of the SDK's code.
 */

/** Where a recording comes from: the fixture's path in customerio/customerio-node, and its kind. */
export interface RecordingSource {
  path: string;
  kind: 'live' | 'synthesized';
}

export type RecordedAnswer =
  | { kind: 'response'; status: number; headers: Record<string, string>; body: string }
  /** A transport error, as Node's fetch surfaces it: TypeError('fetch failed') with the system error as `cause`. */
  | { kind: 'network-error'; code: string; message: string }
  /** An answer slower than the client's timeout (the fixture: a 200 after 1,500 ms against a 100 ms timeout). */
  | { kind: 'too-slow'; delayMs: number };

export interface Recording {
  scenario: string;
  source: RecordingSource;
  answer: RecordedAnswer;
}

/** A recording that is an HTTP answer (not a transport failure). */
export type ResponseRecording = Recording & { answer: Extract<RecordedAnswer, { kind: 'response' }> };

const fixture = (name: string, kind: RecordingSource['kind']): RecordingSource => ({ path: `test/fixtures/responses/${name}.json`, kind });

/** The headers of the live 200 (track__success, Wed, 27 May 2026 20:02:42 GMT), as recorded. */
const LIVE_200_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'cache-control': 'no-cache, no-store, must-revalidate, max-age=0',
  'content-length': '3',
  'content-type': 'application/json; charset=utf-8',
  date: 'Wed, 27 May 2026 20:02:42 GMT',
  status: '200 OK',
  via: '1.1 google',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'alt-svc': 'h3=":443"; ma=2592000,h3-29=":443"; ma=2592000',
};

/** A track event accepted: POST /api/v1/customers/{id}/events answered 200 with the body `{}` (live). */
export const ACCEPTED: ResponseRecording = {
  scenario: 'track__success',
  source: fixture('track__success', 'live'),
  answer: { kind: 'response', status: 200, headers: LIVE_200_HEADERS, body: '{}' },
};

/** 2xx answers with no JSON to read. */
export const ODD_SUCCESSES: Recording[] = [
  {
    scenario: 'empty_body__200',
    source: fixture('empty_body__200', 'synthesized'),
    answer: { kind: 'response', status: 200, headers: {}, body: '' },
  },
  {
    scenario: 'empty_body__204',
    source: fixture('empty_body__204', 'synthesized'),
    answer: { kind: 'response', status: 204, headers: {}, body: '' },
  },
  {
    scenario: 'malformed_json__200',
    source: fixture('malformed_json__200', 'synthesized'),
    answer: { kind: 'response', status: 200, headers: {}, body: '<<not-json>>' },
  },
];

/**
 * Redirects. The SDK follows them itself (redirect: 'manual' in its lib/request.ts, Authorization
 * dropped unless the target ends in `.customer.io`); its 302 fixture points off Customer.io.
 */
export const REDIRECTS: ResponseRecording[] = [
  {
    scenario: 'redirect__301_same_host',
    source: fixture('redirect__301_same_host', 'synthesized'),
    answer: { kind: 'response', status: 301, headers: { location: 'https://track.customer.io/api/v1/customers/abc/' }, body: '' },
  },
  {
    scenario: 'redirect__302_off_domain',
    source: fixture('redirect__302_off_domain', 'synthesized'),
    answer: { kind: 'response', status: 302, headers: { location: 'https://offsite.example.com/redirected' }, body: '' },
  },
  {
    scenario: 'redirect__307_same_host',
    source: fixture('redirect__307_same_host', 'synthesized'),
    answer: { kind: 'response', status: 307, headers: { location: 'https://track.customer.io/api/v1/customers/abc/' }, body: '' },
  },
  {
    scenario: 'redirect__308_same_host',
    source: fixture('redirect__308_same_host', 'synthesized'),
    answer: { kind: 'response', status: 308, headers: { location: 'https://track.customer.io/api/v1/customers/abc/' }, body: '' },
  },
];

/** The connection failing: the request may or may not have reached Customer.io. */
export const NETWORK_FAILURES: Recording[] = [
  {
    scenario: 'network__econnreset',
    source: fixture('network__econnreset', 'synthesized'),
    answer: { kind: 'network-error', code: 'ECONNRESET', message: 'socket hang up' },
  },
  {
    scenario: 'network__econnrefused',
    source: fixture('network__econnrefused', 'synthesized'),
    answer: { kind: 'network-error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:443' },
  },
  {
    scenario: 'network__enotfound',
    source: fixture('network__enotfound', 'synthesized'),
    answer: { kind: 'network-error', code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND track.customer.io' },
  },
  { scenario: 'network__timeout', source: fixture('network__timeout', 'synthesized'), answer: { kind: 'too-slow', delayMs: 1_500 } },
];
