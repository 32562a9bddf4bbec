import { execFileSync } from 'node:child_process';
import { chownSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/**
 * What the throwaway PostgreSQL clusters and PgBouncer of the tests share:
 * as root (CI), both must run as the `postgres` OS user — PostgreSQL and
 * PgBouncer refuse to run as root — and own the files they read.
 */
export interface OsUser {
  uid: number;
  gid: number;
}

/** As root: the `postgres` OS user to run `what` as. Otherwise null: run as ourselves. */
export function postgresOsUser(what: string): OsUser | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(`running as root, but there is no "postgres" OS user to run ${what} as`);
  }
}

/** Write (or append to) a file and give it to `user`. */
export async function writeOwned(path: string, text: string, user: OsUser | null, append = false): Promise<void> {
  if (append) await appendFile(path, text);
  else await writeFile(path, text);
  if (user) chownSync(path, user.uid, user.gid);
}

/** A port nobody listens on now (the OS picks it; a server started right after takes it, or retries). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
