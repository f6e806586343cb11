import { Agent, request } from 'node:http';
import { listenLocal, readBody, sendJson, type LocalServer } from '../../local/http';

/** One POST to `url`, answered as text; `agent` keeps the socket alive when given. */
function post(url: string, body: string, agent?: Agent): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe("local/http: the fakes' HTTP harness", () => {
  let server: LocalServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('listens on 127.0.0.1 on a free port and reports its URL', async () => {
    // Act
    server = await listenLocal((_req, res) => sendJson(res, 200, {}));

    // Assess
    expect(server.server.address()).toMatchObject({ address: '127.0.0.1', port: server.port });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('reads a body up to the limit and flags a longer one as too large', async () => {
    // Prepare
    server = await listenLocal((req, res) => {
      void readBody(req, 5).then(({ body, tooLarge }) => sendJson(res, 200, { kept: body.toString('utf8'), tooLarge }));
    });

    // Act
    const short = await post(server.url, 'abcde');
    const long = await post(server.url, 'abcdefghij');

    // Assess
    expect(JSON.parse(short.text)).toEqual({ kept: 'abcde', tooLarge: false });
    expect(JSON.parse(long.text)).toEqual({ kept: '', tooLarge: true });
  });

  it('answers JSON with its length, and lets a caller replace the content type', async () => {
    // Prepare
    server = await listenLocal((_req, res) =>
      sendJson(res, 429, { é: 1 }, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '1' }),
    );

    // Act
    const answer = await post(server.url, '');

    // Assess
    expect(answer).toMatchObject({ status: 429, text: '{"é":1}' });
    expect(answer.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength('{"é":1}')),
      'retry-after': '1',
    });
  });

  it('closes with a keep-alive connection still open', async () => {
    // Prepare
    const agent = new Agent({ keepAlive: true });
    const open = await listenLocal((_req, res) => sendJson(res, 200, {}));
    await post(open.url, '', agent);

    // Act
    await open.close();

    // Assess
    expect(open.server.listening).toBe(false);
    agent.destroy();
  });
});
