import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ASSET_CACHE, ATLAS_CSP } from '../../src/api/headers.js';
import { createTestApp } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';

// The server's side of the dashboard against a build laid out as scripts/build-atlas.mjs writes it.
const JS = 'console.log("atlas");'.repeat(50);
let t: TestDb;
let dir: string;
let app: FastifyInstance;
let unbuilt: FastifyInstance;

beforeAll(async () => {
  t = await createTestDb();
  dir = mkdtempSync(join(tmpdir(), 'atlas-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="app"></div><script type="module" src="/assets/main-ABC.js"></script>');
  writeFileSync(join(dir, 'assets', 'main-ABC.js'), JS);
  writeFileSync(join(dir, 'assets', 'main-ABC.js.gz'), gzipSync(JS));
  writeFileSync(join(dir, 'assets', 'main-ABC.css'), 'body{color:red}');
  app = await createTestApp(t.db, undefined, { atlasDir: dir });
  unbuilt = await createTestApp(t.db, undefined, { atlasDir: join(dir, 'missing') });
});

afterAll(async () => {
  await app?.close();
  await unbuilt?.close();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Atlas serving', () => {
  it('redirects / to the runs page', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/runs');
  });

  it('answers the HTML shell, uncached and under a strict CSP, for every dashboard address', async () => {
    for (const url of ['/runs', '/runs?status=FAILED', '/runs/0193f0c0-0000-7000-8000-000000000000?seq=4', '/workflows', '/workflows/x', '/analytics', '/settings', '/settings/users', '/sign-in', '/invite/abc']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('<div id="app">');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-security-policy']).toBe(ATLAS_CSP);
      expect(ATLAS_CSP).toContain("script-src 'self'");
      expect(ATLAS_CSP).not.toContain('unsafe');
    }
  });

  it('serves hashed assets with a year of cache, gzipped when the browser accepts it', async () => {
    const plain = await app.inject({ method: 'GET', url: '/assets/main-ABC.js' });
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['content-type']).toMatch(/^text\/javascript/);
    expect(plain.headers['cache-control']).toBe(ASSET_CACHE);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe(JS);
    const gz = await app.inject({ method: 'GET', url: '/assets/main-ABC.js', headers: { 'accept-encoding': 'gzip, br' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.rawPayload).toString()).toBe(JS);
    const css = await app.inject({ method: 'GET', url: '/assets/main-ABC.css', headers: { 'accept-encoding': 'gzip' } });
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.headers['content-encoding']).toBeUndefined();
  });

  it('answers 404 for unknown assets and paths outside the dashboard, without caching them', async () => {
    for (const url of ['/assets/nope.js', '/assets/..%2Findex.html', '/assets/main-ABC.js.gz']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.headers['cache-control']).toBe('no-store');
    }
    expect((await app.inject({ method: 'GET', url: '/not-a-page' })).statusCode).toBe(404);
  });

  it('says how to build the dashboard when it is not built, and the API still works', async () => {
    const res = await unbuilt.inject({ method: 'GET', url: '/runs' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
    expect((await unbuilt.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});
