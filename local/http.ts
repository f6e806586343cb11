import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The one HTTP harness of the sandbox fakes (local/sandbox/*), the PostHog API fake
 * (tests/support/fake-posthog-api.ts) and the local API Gateway (local/start.ts): loopback only,
 * a bounded body, JSON replies. Each caller keeps its own routes, statuses and limits.
 */

export interface LocalServer {
  server: Server;
  /** e.g. http://127.0.0.1:49152 */
  url: string;
  port: number;
  /** Where the socket is bound, as the operating system reports it (local/loopback.ts checks it). */
  listening(): { address: string; port: number };
  /** Stops listening and ends every socket, idle keep-alives and held requests included. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (never another interface); port 0 picks a free one. Rejects when the port is taken. */
export async function listenLocal(handler: RequestListener, port = 0): Promise<LocalServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    listening: () => {
      const { address, port: current } = server.address() as AddressInfo;
      return { address, port: current };
    },
    close: () => closeServer(server),
  };
}

/** Resolves once the server is closed; without closeAllConnections a keep-alive socket would hold it open. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    // A server already closed has nothing left to wait for: resolve either way.
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Reads a request's whole body but keeps at most `maxBytes` of it, so a huge request cannot fill memory. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<{ body: Buffer; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  }
  return { body: Buffer.concat(chunks), tooLarge: size > maxBytes };
}

/**
 * A JSON answer with its length; `headers` add to or replace the defaults (spell them
 * `Content-Type`, as here, to replace it). Nothing is sent on a socket already ended or destroyed
 * (a fault that dropped it, or a client that gave up).
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}
