import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** A JSON answer to API Gateway (payload v2). */
export const jsonResponse = (
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** Every refusal has one shape: `{"error":{"code","message"}}`. */
export const errorResponse = (statusCode: number, code: string, message: string, headers?: Record<string, string>) =>
  jsonResponse(statusCode, { error: { code, message } }, headers);
