// Build Atlas, the web dashboard: atlas/src → dist/atlas (index.html + hashed assets, each also gzipped).
// The server (src/api/atlas.ts) serves index.html with no-store and the assets with a year's cache:
// a new build changes the hashes, so a cached asset is never stale.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** The budget for JavaScript shipped, gzipped; the build fails above it. */
const JS_BUDGET_GZ = 150 * 1024;
const out = 'dist/atlas';

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: ['atlas/src/main.tsx'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

const files = Object.keys(result.metafile.outputs).map((f) => basename(f));
const js = files.find((f) => f.endsWith('.js'));
const css = files.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`atlas build: expected one .js and one .css, got ${files.join(', ')}`);

let jsGz = 0;
for (const file of files) {
  const bytes = readFileSync(join(out, 'assets', file));
  const gz = gzipSync(bytes, { level: 9 });
  writeFileSync(join(out, 'assets', `${file}.gz`), gz);
  if (file.endsWith('.js')) jsGz += gz.length;
}
if (jsGz > JS_BUDGET_GZ) throw new Error(`atlas build: ${jsGz} bytes of JavaScript gzipped, over the ${JS_BUDGET_GZ}-byte budget`);

// The shell: no inline script or style, so the Content-Security-Policy can be script-src 'self'.
writeFileSync(
  join(out, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Stepwise</title>
<link rel="stylesheet" href="/assets/${css}">
<script type="module" src="/assets/${js}"></script>
</head>
<body>
<div id="app"></div>
<noscript>Atlas, the Stepwise dashboard, needs JavaScript.</noscript>
</body>
</html>
`,
);
writeFileSync(join(out, 'build.json'), JSON.stringify({ js, css, jsGzipBytes: jsGz }, null, 2) + '\n');
process.stderr.write(`atlas: ${js} (${(jsGz / 1024).toFixed(1)} KiB gzipped), ${css}\n`);
