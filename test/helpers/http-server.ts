import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  url: string;
  /** Calls completed per path (a response was sent). */
  calls: Map<string, number>;
  /** Requests whose connection closed before an answer (aborted by the client). */
  aborted: string[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => boolean | void;

/** A local HTTP server for steps to call; `handler` returns true when it took the request. */
export async function startTestServer(handler: Handler): Promise<TestServer> {
  const calls = new Map<string, number>();
  const aborted: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      res.on('close', () => {
        if (!res.writableEnded) aborted.push(req.url!);
      });
      res.on('finish', () => calls.set(req.url!, (calls.get(req.url!) ?? 0) + 1));
      if (handler(req, res, body) !== true) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, path: req.url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    aborted,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
