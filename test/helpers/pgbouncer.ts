import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, postgresOsUser, writeOwned, type OsUser } from './postgres-os-user.js';

/**
 * A throwaway PgBouncer in transaction pooling mode in front of the test
 * PostgreSQL server, for tests of what survives a transaction pooler. It
 * listens on 127.0.0.1 and a free port (never 6432, where Debian's own
 * pgbouncer service may run), keeps its ini, auth file, log, pid file and
 * unix socket in a temporary directory of its own, and is stopped and that
 * directory removed by stop(), or at the latest when the test process exits.
 *
 * PgBouncer refuses to run as root, and CI runs as root: there it runs as
 * the `postgres` OS user (runuser), which owns the directory.
 */

/** Debian's package puts it here; STEPWISE_PGBOUNCER_BIN overrides. */
const DEFAULT_BINARY = '/usr/sbin/pgbouncer';

/** Bounded waits: a PgBouncer that takes longer than these to start or stop is broken, not slow. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** Ports taken between freePort() and PgBouncer's bind (another process got there first) are retried this often. */
const START_ATTEMPTS = 3;

function binary(): string {
  return process.env.STEPWISE_PGBOUNCER_BIN || DEFAULT_BINARY;
}

/** Why a PgBouncer cannot be started here (the tests then skip, saying so), or null when it can. */
export function pgbouncerUnavailable(): string | null {
  try {
    accessSync(binary(), constants.X_OK);
    return null;
  } catch {
    return `no PgBouncer binary at ${binary()} (apt-get install pgbouncer, or set STEPWISE_PGBOUNCER_BIN)`;
  }
}

export interface PgBouncerOptions {
  /** Where PostgreSQL listens (default 127.0.0.1:5432, the test server; trust auth assumed). */
  serverHost?: string;
  serverPort?: number;
  /**
   * Server connections per (database, user) pool: default_pool_size, with no
   * reserve pool and no minimum, so this is the most that pool ever holds.
   * Default 3: small next to a Stepwise pool, so clients really share them.
   */
  poolSize?: number;
}

export interface PgBouncer {
  readonly port: number;
  /** The temporary directory holding its ini, auth file, log, pid file and unix socket. */
  readonly dir: string;
  /** What `default_pool_size` is: the most server connections one database's pool opens. */
  readonly poolSize: number;
  /** A URL to `database` on the server, through PgBouncer, as the superuser `postgres`. */
  url(database: string): string;
  /** A statement of PgBouncer's admin console (`SHOW POOLS`, `SHOW SERVERS`, …): its rows. */
  admin<R = Record<string, unknown>>(command: string): Promise<R[]>;
  /** PgBouncer's log so far. */
  log(): Promise<string>;
  /** Stop it and delete its directory. Safe to call twice. */
  stop(): Promise<void>;
}

interface Settings {
  dir: string;
  port: number;
  serverHost: string;
  serverPort: number;
  poolSize: number;
}

function ini(s: Settings): string {
  return [
    '[databases]',
    // Any database name the client asks for, on the test server: each test file's own database gets a pool.
    `* = host=${s.serverHost} port=${s.serverPort}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${s.port}`,
    `unix_socket_dir = ${s.dir}`,
    `logfile = ${join(s.dir, 'pgbouncer.log')}`,
    `pidfile = ${join(s.dir, 'pgbouncer.pid')}`,
    // trust still needs the user in the auth file.
    'auth_type = trust',
    `auth_file = ${join(s.dir, 'userlist.txt')}`,
    'admin_users = postgres',
    'pool_mode = transaction',
    `default_pool_size = ${s.poolSize}`,
    'min_pool_size = 0',
    'reserve_pool_size = 0',
    'max_client_conn = 500',
    // Server connections are never closed for idleness while a test runs: a test that counts
    // what the pool's server connections hold (prepared statements, LISTENs) relies on them staying.
    'server_idle_timeout = 0',
    // max_prepared_statements stays unset: 1.18 (Debian 12) has no such setting, and a newer PgBouncer
    // left at its default is the configuration the docs warn about.
    '',
  ].join('\n');
}

/** Every PgBouncer not yet stopped: killed and its directory removed at process exit if a test could not. */
const alive = new Set<Instance>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const instance of alive) instance.stopSync();
  });
}

class Instance implements PgBouncer {
  private stopped = false;
  private output = '';
  private readonly exited: Promise<void>;

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly poolSize: number,
    private readonly child: ChildProcess,
  ) {
    alive.add(this);
    installExitHook();
    // Drained so a chatty PgBouncer never blocks on a full pipe; kept to explain a failed start.
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async admin<R = Record<string, unknown>>(command: string): Promise<R[]> {
    const c = new pg.Client({ connectionString: this.url('pgbouncer') });
    await c.connect();
    try {
      // The admin console speaks only the simple query protocol: a query without parameters.
      return (await c.query(command)).rows as R[];
    } finally {
      await c.end();
    }
  }

  async log(): Promise<string> {
    const file = await readFile(join(this.dir, 'pgbouncer.log'), 'utf8').catch(() => '');
    return file || this.output;
  }

  /** Wait (bounded) until the admin console answers; fail with its output if it exits first. */
  async waitReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!this.running) throw new Error(`pgbouncer exited while starting:\n${this.output}\n${await this.log()}`);
      try {
        await this.admin('SHOW VERSION');
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`pgbouncer on port ${this.port} did not answer within ${START_TIMEOUT_MS} ms: ${(err as Error).message}\n${await this.log()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** PgBouncer's own pid (runuser, our child, is its parent), from its pid file. */
  private pgbouncerPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, 'pgbouncer.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Signal PgBouncer itself, found by its pid file, and let runuser (our
   * child) reap it and exit; signalling both at once can leave runuser gone
   * before it reaps, and the dead PgBouncer a zombie nobody collects. Without
   * a pid file (it never got that far) the signal goes to our child, which
   * passes it on.
   */
  private signal(sig: NodeJS.Signals): void {
    const pid = this.pgbouncerPid();
    if (pid !== undefined) {
      try {
        process.kill(pid, sig);
        return;
      } catch {
        // Already gone: make sure our child goes too.
      }
    }
    if (this.running) this.child.kill(sig);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.running) {
      this.signal('SIGTERM');
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), STOP_TIMEOUT_MS).unref()),
      ]);
      if (timedOut) {
        this.signal('SIGKILL');
        await this.exited;
      }
    }
    this.stopSync();
  }

  /** Synchronous, so the process-exit hook can use it too. */
  stopSync(): void {
    if (this.stopped) return;
    if (this.running) this.signal('SIGKILL');
    this.stopped = true;
    alive.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function startOnce(options: PgBouncerOptions, user: OsUser | null): Promise<Instance> {
  const dir = await mkdtemp(join(tmpdir(), 'stepwise-pgbouncer-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const settings: Settings = {
    dir,
    port: await freePort(),
    serverHost: options.serverHost ?? '127.0.0.1',
    serverPort: options.serverPort ?? 5432,
    poolSize: options.poolSize ?? 3,
  };
  const iniPath = join(dir, 'pgbouncer.ini');
  try {
    await writeOwned(iniPath, ini(settings), user);
    await writeOwned(join(dir, 'userlist.txt'), '"postgres" ""\n', user);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  // In the foreground (no -d): it is our child, and its exit tells us it failed to start.
  const [file, argv] = user ? ['runuser', ['-u', 'postgres', '--', binary(), iniPath]] : [binary(), [iniPath]];
  const child = spawn(file, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const instance = new Instance(settings.port, dir, settings.poolSize, child);
  try {
    await instance.waitReady();
    return instance;
  } catch (err) {
    await instance.stop();
    throw err;
  }
}

/** Start a PgBouncer in transaction pooling mode (see the top of this file) and wait until it answers. */
export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const unavailable = pgbouncerUnavailable();
  if (unavailable) throw new Error(unavailable);
  const user = postgresOsUser('PgBouncer (it refuses to run as root)');
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(options, user);
    } catch (err) {
      lastError = err;
      // Only a port taken in the meantime is worth another try.
      if (!/address already in use/i.test((err as Error).message)) throw err;
    }
  }
  throw lastError;
}
