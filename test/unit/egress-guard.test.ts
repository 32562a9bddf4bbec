import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Every step that reaches the network does so through `ctx.net` (the egress
 * policy, src/net/outbound.ts). This keeps the step types and the AI
 * providers from growing a network path of their own: a global fetch, a
 * socket, an HTTP client, or a driver that connects by name. The few files
 * that hand a driver a socket to the checked address are listed by name,
 * with what they may use.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GUARDED = ['src/engine', 'src/ai', 'src/templates'];

/** Files allowed one of the forbidden imports, and which (each hands its driver a checked connection). */
const ALLOWED: Record<string, readonly string[]> = {
  'src/engine/steps/sql/checked-socket.ts': ['node:net'],
  'src/engine/steps/sql/postgres.ts': ['pg'],
  'src/engine/steps/sql/mysql.ts': ['mysql2'],
  'src/engine/steps/email-smtp.ts': ['nodemailer'],
};
const NETWORK_MODULES = ['node:net', 'net', 'node:tls', 'tls', 'node:http', 'http', 'node:https', 'https', 'node:dgram', 'dgram', 'undici', 'pg', 'mysql2', 'nodemailer', 'axios', 'got'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('egress guard', () => {
  const sources = GUARDED.flatMap((dir) => files(join(ROOT, dir))).map((path) => ({ file: relative(ROOT, path), text: readFileSync(path, 'utf8') }));

  it('finds the files it guards', () => {
    expect(sources.length).toBeGreaterThan(50);
    expect(sources.some((s) => s.file === 'src/engine/steps/http.ts')).toBe(true);
  });

  it('no step type or provider calls the global fetch', () => {
    const offenders = sources.filter((s) => /(^|[^.\w])fetch\s*\(/m.test(s.text.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))).map((s) => s.file);
    expect(offenders).toEqual([]);
  });

  it('network modules are imported only where a driver is handed a checked connection', () => {
    const offenders: string[] = [];
    for (const { file, text } of sources) {
      // `import type` brings no code: only value imports and dynamic imports count.
      const code = text.replace(/^import type [^;]*;/gm, '');
      for (const m of code.matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (NETWORK_MODULES.includes(spec) && !(ALLOWED[file] ?? []).includes(spec)) offenders.push(`${file}: ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
