import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A minimal authenticating forward proxy for browser tests, standing in for
 * the egress proxy: it answers 407 without the right Basic credentials,
 * forwards plain HTTP and CONNECT tunnels to loopback only, and refuses
 * anything else with 403 and `x-stepwise-egress: denied` without ever
 * opening a connection to it. Every request is recorded.
 */
export interface ForwardProxy {
  /** `http://127.0.0.1:PORT` */
  server: string;
  username: string;
  password: string;
  /** Requests seen with valid credentials: `GET http://127.0.0.1:…/path`, `CONNECT host:port`. */
  seen: string[];
  /** Hosts refused (never contacted). */
  denied: string[];
  /** Requests answered 407 (no or wrong credentials). */
  challenged: () => number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export async function startForwardProxy(username = 'session-1', password = 'secret-1'): Promise<ForwardProxy> {
  const seen: string[] = [];
  const denied: string[] = [];
  let challenged = 0;
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const sockets = new Set<Socket>();

  const authorized = (req: IncomingMessage) => req.headers['proxy-authorization'] === expected;

  const server: Server = createServer((req, res) => {
    if (!authorized(req)) {
      challenged++;
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="egress"', 'content-length': '0' }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    seen.push(`${req.method} ${target.href}`);
    if (!LOOPBACK.has(target.hostname)) {
      denied.push(target.host);
      res.writeHead(403, { 'content-type': 'text/plain', 'x-stepwise-egress': 'denied' }).end('refused by the egress proxy');
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: `${target.pathname}${target.search}`, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    if (!authorized(req)) {
      challenged++;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="egress"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(/:(?=\d+$)/);
    if (!host || !LOOPBACK.has(host)) {
      denied.push(req.url ?? '');
      client.end('HTTP/1.1 403 Forbidden\r\nx-stepwise-egress: denied\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    username,
    password,
    seen,
    denied,
    challenged: () => challenged,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
