import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeCapturedEvent {
  uuid?: string;
  event: string;
  distinctId: string;
  properties: Record<string, unknown>;
}

export type PostHogFault = 'http503' | 'lost-response';

export interface FakePostHog {
  url: string;
  apiKey: string;
  /** The worker settings that point at this fake, with its project key. */
  readonly env: { POSTHOG_HOST: string; POSTHOG_API_KEY: string };
  /** Every capture accepted, repeats included: PostHog's own dedupe by uuid is best-effort. */
  captures: FakeCapturedEvent[];
  injectFaults(...faults: PostHogFault[]): void;
  close(): Promise<void>;
}

/**
 * PostHog's capture endpoint (`POST /i/v0/e/`) as the contract describes it: 200 for anything
 * that parses, even an event it will silently drop (no event name or distinct_id) — which is
 * why those are not recorded here; 401 for a wrong project key.
 */
export async function startFakePostHog(options: { apiKey?: string; port?: number; onCapture?: (e: FakeCapturedEvent) => void } = {}): Promise<FakePostHog> {
  const apiKey = options.apiKey ?? 'phc_sandbox';
  const captures: FakeCapturedEvent[] = [];
  const faults: PostHogFault[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || !req.url?.startsWith('/i/v0/e')) return reply(404, { error: 'not found' });
      const fault = faults.shift();
      if (fault === 'http503') return reply(503, { error: 'unavailable' });
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, { type: 'validation_error', detail: 'Malformed request data' });
      }
      if (body.api_key !== apiKey) return reply(401, { type: 'authentication_error', detail: 'Project API key invalid' });
      if (typeof body.event === 'string' && body.event && typeof body.distinct_id === 'string' && body.distinct_id) {
        const captured: FakeCapturedEvent = {
          uuid: typeof body.uuid === 'string' ? body.uuid : undefined,
          event: body.event,
          distinctId: body.distinct_id,
          properties: (body.properties as Record<string, unknown>) ?? {},
        };
        captures.push(captured);
        options.onCapture?.(captured);
      }
      if (fault === 'lost-response') return void req.socket.destroy();
      reply(200, { status: 'Ok' });
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    apiKey,
    env: { POSTHOG_HOST: url, POSTHOG_API_KEY: apiKey },
    captures,
    injectFaults: (...more) => void faults.push(...more),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
