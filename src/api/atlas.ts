import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served to browsers: the dashboard's HTML shell or one of its hashed assets (api/headers.ts). */
    atlas?: 'page' | 'asset';
  }
}

/**
 * Atlas, the web dashboard, served by the API process itself: no other
 * server, no CDN, works offline. `npm run build` writes dist/atlas (see
 * scripts/build-atlas.mjs): an HTML shell and content-hashed assets, each
 * also gzipped. The shell is answered for every dashboard address (the
 * client routes), never cached; assets are cached for a year, since a new
 * build changes their names. Everything is read into memory once at start:
 * the whole dashboard is a few hundred KB.
 */

/** Addresses the client routes; anything else stays a 404 from the API. */
export const ATLAS_PAGES = ['/runs', '/runs/:id', '/workflows', '/workflows/:id', '/analytics', '/settings', '/settings/:tab', '/sign-in', '/invite/:token'] as const;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

interface Asset {
  body: Buffer;
  gzip: Buffer | null;
  type: string;
}

/** dist/atlas next to the compiled code (dist/api/atlas.js) and, under tsx, for the source (src/api/atlas.ts). */
export function defaultAtlasDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'atlas');
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const assetDir = join(dir, 'assets');
  if (!existsSync(assetDir)) return assets;
  for (const name of readdirSync(assetDir)) {
    if (name.endsWith('.gz')) continue;
    const type = TYPES[extname(name)];
    if (!type) continue;
    const gzPath = join(assetDir, `${name}.gz`);
    assets.set(name, { body: readFileSync(join(assetDir, name)), gzip: existsSync(gzPath) ? readFileSync(gzPath) : null, type });
  }
  return assets;
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stepwise</title></head><body>
<h1>The dashboard is not built</h1><p>Run <code>npm run build</code> (or start with <code>npm start</code>, which builds it), then reload.</p>
<p>The API is available under <code>/v1</code>; its description is at <code>/openapi.json</code>.</p></body></html>`;

function acceptsGzip(req: FastifyRequest): boolean {
  const header = req.headers['accept-encoding'];
  return typeof header === 'string' && /\bgzip\b/.test(header);
}

/** Register the dashboard's routes. `dir` defaults to dist/atlas. */
export function atlasRoutes(app: FastifyInstance, dir: string = defaultAtlasDir()): void {
  const shellPath = join(dir, 'index.html');
  const shell = existsSync(shellPath) ? readFileSync(shellPath) : null;
  const assets = loadAssets(dir);

  const page = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .status(shell ? 200 : 503)
      .type('text/html; charset=utf-8')
      .send(shell ?? NOT_BUILT);
  const hidden = { hide: true } as const;
  app.get('/', { config: { public: true, atlas: 'page' }, schema: hidden }, async (_req, reply) => reply.redirect('/runs', 302));
  for (const url of ATLAS_PAGES) app.get(url, { config: { public: true, atlas: 'page' }, schema: hidden }, page);

  app.get<{ Params: { file: string } }>(
    '/assets/:file',
    { config: { public: true, atlas: 'asset' }, schema: hidden },
    async (req, reply) => {
      const asset = assets.get(req.params.file);
      if (!asset) return reply.status(404).type('text/plain; charset=utf-8').send('not found');
      reply.type(asset.type).header('vary', 'accept-encoding');
      if (asset.gzip && acceptsGzip(req)) return reply.header('content-encoding', 'gzip').send(asset.gzip);
      return reply.send(asset.body);
    },
  );
}
