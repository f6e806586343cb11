import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { randomUUID } from 'node:crypto';

/** An API Gateway HTTP API (payload v2) event, as the ingest Lambda receives it behind `POST /webhooks/posthog`. */
export function httpApiEvent(request: {
  method?: string;
  path?: string;
  headers?: Record<string, string | undefined>;
  body?: string | Buffer;
}): APIGatewayProxyEventV2 {
  const method = request.method ?? 'POST';
  const path = request.path ?? '/webhooks/posthog';
  const headers: Record<string, string> = {};
  // API Gateway lowercases header names.
  for (const [name, value] of Object.entries(request.headers ?? {})) if (value !== undefined) headers[name.toLowerCase()] = value;
  const body = request.body === undefined ? undefined : Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body);
  const textual = /json|text|form/i.test(headers['content-type'] ?? 'application/json');
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: '',
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: headers['user-agent'] ?? '' },
      requestId: randomUUID(),
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    // Like API Gateway: text bodies arrive as text, anything else base64-encoded.
    body: body === undefined ? undefined : textual ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: body !== undefined && !textual,
  };
}
