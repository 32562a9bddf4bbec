import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressDeniedError } from '../../src/net/errors.js';
import { Outbound } from '../../src/net/outbound.js';
import type { ResolvedAddress } from '../../src/net/egress.js';

/**
 * Keep-alive under the egress policy: requests to one checked address share
 * a connection, and a pooled connection never lets a request skip its own
 * check (the name is resolved and checked before the pool is consulted).
 */
let server: Server;
let port: number;
const sockets = new Set<Socket>();
let connections = 0;

beforeAll(async () => {
  server = createServer((req, res) => res.end(req.url));
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function text(outbound: Outbound, url: string): Promise<string> {
  const res = await outbound.request({ method: 'GET', url });
  let out = '';
  for await (const chunk of res.body) out += String(chunk);
  return out;
}

describe('CheckedAgent', () => {
  it('reuses one connection for sequential requests to the same checked address', async () => {
    const outbound = new Outbound(`api.test:${port}`, async () => [{ address: '127.0.0.1', family: 4 }]);
    const before = connections;
    expect(await text(outbound, `http://api.test:${port}/a`)).toBe('/a');
    expect(await text(outbound, `http://api.test:${port}/b`)).toBe('/b');
    expect(await text(outbound, `http://api.test:${port}/c`)).toBe('/c');
    expect(connections - before).toBe(1);
    outbound.close();
  });

  it('checks every request before the pool: a name that now resolves elsewhere is refused despite an idle connection', async () => {
    let answer: ResolvedAddress[] = [{ address: '127.0.0.1', family: 4 }];
    let lookups = 0;
    // Admitted by name on this port while it resolves to 127.0.0.1; then it "rebinds" to a metadata address.
    const outbound = new Outbound(`api.test:${port}`, async () => {
      lookups++;
      return answer;
    });
    expect(await text(outbound, `http://api.test:${port}/first`)).toBe('/first');
    answer = [{ address: '169.254.169.254', family: 4 }];
    await expect(text(outbound, `http://api.test:${port}/second`)).rejects.toBeInstanceOf(EgressDeniedError);
    expect(lookups).toBe(2);
    outbound.close();
  });

  it('close() ends the idle connections', async () => {
    const outbound = new Outbound(`api.test:${port}`, async () => [{ address: '127.0.0.1', family: 4 }]);
    await text(outbound, `http://api.test:${port}/x`);
    const open = sockets.size;
    expect(open).toBeGreaterThan(0);
    outbound.close();
    await expect.poll(() => sockets.size, { timeout: 5_000 }).toBeLessThan(open);
  });
});
