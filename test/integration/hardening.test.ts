import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { SECURITY_HEADERS } from '../../src/api/headers.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger } from '../helpers/fixtures.js';
import { client, expectError, simpleDefinition, type ApiResponse } from '../helpers/api.js';

let t: TestDb;
let app: FastifyInstance;
let limited: FastifyInstance;
let key: string;

beforeAll(async () => {
  t = await createTestDb();
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test' });
  // One token per 1,000 s: no refill can happen during the test however slow the machine is.
  limited = await buildApp({ db: t.db, logger: silentLogger, version: 'test', rateLimit: { perSecond: 0.001, burst: 3 } });
  key = (await seedOrg(t.db, 'Hardened')).key;
});

afterAll(async () => {
  await app?.close();
  await limited?.close();
  await t?.close();
});

function expectSecurityHeaders(res: ApiResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(res.headers[name], name).toBe(value);
}

describe('rate limit per key', () => {
  it('refuses past the burst with 429, Retry-After and RATE_LIMITED, per key, changing nothing', async () => {
    const api = client(limited, key);
    for (let i = 0; i < 3; i++) expect((await api.get('/v1/workflows')).status).toBe(200);
    const res = await api.post('/v1/workflows', { name: 'refused', definition: simpleDefinition() });
    const err = expectError(res, 429, 'RATE_LIMITED');
    expect(err.details).toMatchObject({ perSecond: 0.001, burst: 3 });
    expect(err.details.retryAfterSeconds).toBeGreaterThan(900);
    expect(res.headers['retry-after']).toBe(String(err.details.retryAfterSeconds));
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.workflows WHERE name = 'refused'`);
    expect(rows[0]!.n).toBe(0);
    // Another key is not held back by the first one's burst.
    const other = client(limited, (await seedOrg(t.db, 'Neighbour')).key);
    expect((await other.get('/v1/workflows')).status).toBe(200);
  });
});

describe('responses', () => {
  it('carry the security headers on success, client errors and not-found alike', async () => {
    const api = client(app, key);
    for (const res of [
      await api.get('/v1/workflows'),
      await client(app, undefined).get('/v1/workflows'),
      await api.get('/v1/nowhere'),
      await api.request('POST', '/v1/workflows', { raw: '{' }),
      await client(app, undefined).get('/health'),
    ]) {
      expectSecurityHeaders(res);
    }
  });

  it('an internal error is a bare 500: no stack, no SQL, no database message', async () => {
    const api = client(app, key);
    expect((await api.get('/v1/clients')).status).toBe(200);
    // Force a real failure inside the handler: the table it reads is gone.
    await t.db.exec(`ALTER TABLE stepwise.clients RENAME TO clients_hidden`);
    let res: ApiResponse;
    try {
      res = await api.get('/v1/clients');
    } finally {
      await t.db.exec(`ALTER TABLE stepwise.clients_hidden RENAME TO clients`);
    }
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: expect.stringMatching(/^(DATABASE|INTERNAL)$/), message: 'internal error', details: {} } });
    expect(JSON.stringify(res.body)).not.toMatch(/clients|relation|SELECT|\.ts|at /);
    expectSecurityHeaders(res);
    expect((await api.get('/v1/clients')).status).toBe(200);
  });
});
