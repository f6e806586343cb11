import type { IncomingMessage } from 'node:http';

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
