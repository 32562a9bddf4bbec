import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The header a workflow's http step renders the run's own key into. */
export const EFFECT_KEY_HEADER = 'x-effect-key';

/**
 * A local HTTP server that stands for the outside world a workflow acts on:
 * every call carries an idempotency key (EFFECT_KEY_HEADER, rendered from
 * the run's input), and the server counts the calls per key, so a side
 * effect performed twice — a step run again after a database restart — is
 * visible as a count of 2. It answers every call 200 at once.
 */
export interface SideEffectServer {
  url: string;
  /** Calls per key. */
  readonly calls: ReadonlyMap<string, number>;
  /** When each key was first called (epoch ms). */
  readonly firstCallAt: ReadonlyMap<string, number>;
  /** Calls that came without a key (a workflow that does not send it: a bug in the caller's set-up). */
  readonly unkeyed: number;
  /** Keys called more than once, with their counts. */
  duplicates(): [string, number][];
  close(): Promise<void>;
}

export async function startSideEffectServer(): Promise<SideEffectServer> {
  const calls = new Map<string, number>();
  const firstCallAt = new Map<string, number>();
  let unkeyed = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = req.headers[EFFECT_KEY_HEADER];
      if (typeof key === 'string' && key !== '') {
        calls.set(key, (calls.get(key) ?? 0) + 1);
        if (!firstCallAt.has(key)) firstCallAt.set(key, Date.now());
      } else unkeyed++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  // Keep-alive connections from the workers' HTTP agents are many and short-lived; no per-request timeout.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    firstCallAt,
    get unkeyed() {
      return unkeyed;
    },
    duplicates: () => [...calls].filter(([, n]) => n > 1),
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
