import { execFile, execFileSync } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, postgresOsUser, writeOwned, type OsUser } from './postgres-os-user.js';

/**
 * Throwaway PostgreSQL clusters for tests that need a server of their own —
 * a streaming standby, a server to stop and start — never the shared one on
 * 5432. Each cluster lives in its own temporary directory (data, log, unix
 * socket), listens on 127.0.0.1 and a free port, trusts every local
 * connection including replication, and is removed by destroy(), or at the
 * latest when the test process exits.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: there every
 * binary runs as the `postgres` OS user (runuser), which owns the directory.
 */

const exec = promisify(execFile);

/** Where Debian and Ubuntu install each major version's server binaries. */
const PG_ROOT = '/usr/lib/postgresql';
const NEEDED = ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'] as const;

/** Bounded waits: a cluster that takes longer than this to start or answer is broken, not slow. */
const START_TIMEOUT_S = 60;
const READY_TIMEOUT_MS = 30_000;

export interface PgBinaries {
  /** The directory holding initdb, pg_ctl, pg_basebackup and postgres. */
  dir: string;
  /** Its major version (15, 16, …). */
  version: number;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The newest installed server binaries: STEPWISE_PG_BIN if set, else the
 * highest version under /usr/lib/postgresql that has all of them; null when
 * there are none.
 */
export function findPgBinaries(): PgBinaries | null {
  const override = process.env.STEPWISE_PG_BIN;
  const candidates: PgBinaries[] = [];
  if (override) candidates.push({ dir: override, version: 0 });
  else if (existsSync(PG_ROOT)) {
    for (const entry of readdirSync(PG_ROOT)) {
      if (/^\d+$/.test(entry)) candidates.push({ dir: join(PG_ROOT, entry, 'bin'), version: Number(entry) });
    }
    candidates.sort((a, b) => b.version - a.version);
  }
  return candidates.find((c) => NEEDED.every((name) => executable(join(c.dir, name)))) ?? null;
}

/** Why throwaway clusters cannot be made here (the tests then skip, saying so), or null when they can. */
export function pgClustersUnavailable(): string | null {
  if (findPgBinaries() === null) {
    return `no PostgreSQL server binaries (${NEEDED.join(', ')}) under ${PG_ROOT}/<version>/bin or STEPWISE_PG_BIN`;
  }
  return null;
}

function command(bins: PgBinaries, user: OsUser | null, program: string, args: string[]): [string, string[]] {
  const path = join(bins.dir, program);
  return user ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

async function run(bins: PgBinaries, user: OsUser | null, cwd: string, program: string, args: string[]): Promise<string> {
  const [file, argv] = command(bins, user, program, args);
  try {
    const { stdout, stderr } = await exec(file, argv, { cwd, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${program} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

export interface PgCluster {
  /** 'primary', 'standby', or the name given. */
  readonly name: string;
  readonly port: number;
  /** The temporary directory holding everything of this cluster. */
  readonly dir: string;
  readonly dataDir: string;
  /** Connection URL as the superuser `postgres` (trust auth) to `database` (default postgres). */
  url(database?: string): string;
  /** One statement on a connection of its own, as the superuser. */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** Start it and wait until it accepts connections. */
  start(): Promise<void>;
  /** Stop it: 'fast' (default: clients disconnected, clean shutdown) or 'immediate' (a crash, recovered at the next start). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  restart(): Promise<void>;
  readonly running: boolean;
  /** The server's log so far (why it would not start, what it did). */
  log(): Promise<string>;
  /** Stop it at once if running and delete its directory. Safe to call twice. */
  destroy(): Promise<void>;
}

/** Every cluster not yet destroyed: removed at process exit if a test could not. */
const alive = new Set<Cluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const cluster of alive) cluster.destroySync();
  });
}

class Cluster implements PgCluster {
  running = false;
  private destroyed = false;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dir: string,
    private readonly bins: PgBinaries,
    private readonly user: OsUser | null,
  ) {
    alive.add(this);
    installExitHook();
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  private get logFile(): string {
    return join(this.dir, 'server.log');
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    const client = new pg.Client({ connectionString: this.url(database), application_name: 'stepwise-test-cluster' });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as R[];
    } finally {
      await client.end();
    }
  }

  async start(): Promise<void> {
    try {
      await run(this.bins, this.user, this.dir, 'pg_ctl', [
        '-D', this.dataDir, '-l', this.logFile, '-w', '-t', String(START_TIMEOUT_S),
        // Port and socket directory on the command line, not in postgresql.conf: a standby copies that file.
        '-o', `-p ${this.port} -k ${this.dir}`,
        'start',
      ]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ${this.name} server log ---\n${await this.log()}`);
    }
    this.running = true;
    await this.waitReady();
  }

  /** pg_ctl -w returns once the postmaster says ready; a standby may still refuse for a moment while it reaches consistency. */
  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      try {
        await this.query('SELECT 1');
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${this.name} on port ${this.port} did not accept connections: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await run(this.bins, this.user, this.dir, 'pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', String(START_TIMEOUT_S), 'stop']);
    this.running = false;
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.start();
  }

  async log(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '(no log)');
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }

  /** Synchronous, so the process-exit hook can use it too. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    alive.delete(this);
    if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
      const [file, argv] = command(this.bins, this.user, 'pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
      try {
        execFileSync(file, argv, { cwd: this.dir, stdio: 'ignore' });
      } catch {
        // Already gone (crashed, or stopped by the test): the directory goes anyway.
      }
    }
    this.running = false;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A temporary directory the server's OS user owns (mode 0700, as PostgreSQL wants it). */
async function clusterDir(name: string, user: OsUser | null): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `stepwise-pg-${name}-`));
  if (user) chownSync(dir, user.uid, user.gid);
  return dir;
}

/**
 * Settings of every throwaway cluster. fsync off: nothing here must survive
 * an OS crash, and it makes initdb and checkpoints several times faster on
 * a loaded CI machine; a server process crash (stop -m immediate) still
 * recovers, the page cache holding what was written.
 */
const BASE_SETTINGS: Record<string, string> = {
  listen_addresses: "'127.0.0.1'",
  fsync: 'off',
  shared_buffers: "'32MB'",
  max_connections: '100',
  wal_level: 'replica',
  max_wal_senders: '5',
  hot_standby: 'on',
  log_line_prefix: "'%m [%p] %a '",
};

const HBA = [
  'local all all trust',
  'host all all 127.0.0.1/32 trust',
  'local replication all trust',
  'host replication all 127.0.0.1/32 trust',
  '',
].join('\n');

export interface CreateClusterOptions {
  name?: string;
  /** postgresql.conf settings on top of BASE_SETTINGS, values as SQL literals (`"'on'"`, `'10'`). */
  settings?: Record<string, string>;
}

function confLines(settings: Record<string, string>): string {
  return `\n# stepwise test cluster\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`;
}

function requireBinaries(): PgBinaries {
  const bins = findPgBinaries();
  if (!bins) throw new Error(pgClustersUnavailable()!);
  return bins;
}

/** initdb a new cluster and start it. */
export async function createCluster(options: CreateClusterOptions = {}): Promise<PgCluster> {
  const bins = requireBinaries();
  const user = postgresOsUser('the PostgreSQL server');
  const name = options.name ?? 'primary';
  const dir = await clusterDir(name, user);
  const cluster = new Cluster(name, await freePort(), dir, bins, user);
  try {
    await run(bins, user, dir, 'initdb', ['-D', cluster.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await writeOwned(join(cluster.dataDir, 'pg_hba.conf'), HBA, user);
    await writeOwned(join(cluster.dataDir, 'postgresql.conf'), confLines({ ...BASE_SETTINGS, ...options.settings }), user, true);
    await cluster.start();
    return cluster;
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}

/**
 * A hot standby of `primary`, streaming from it: pg_basebackup -R -X stream
 * (the copy's postgresql.auto.conf gets primary_conninfo, standby.signal
 * makes it a standby), started on a port of its own.
 */
export async function createStandby(primary: PgCluster, options: { name?: string } = {}): Promise<PgCluster> {
  const bins = requireBinaries();
  const user = postgresOsUser('the PostgreSQL server');
  const name = options.name ?? 'standby';
  const dir = await clusterDir(name, user);
  const standby = new Cluster(name, await freePort(), dir, bins, user);
  try {
    await run(bins, user, dir, 'pg_basebackup', [
      '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres',
      '-D', standby.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync',
    ]);
    await standby.start();
    const [row] = await standby.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
    if (!row?.standby) throw new Error(`${name} started but is not in recovery`);
    return standby;
  } catch (err) {
    await standby.destroy();
    throw err;
  }
}

/**
 * Wait (bounded) until `standby` has replayed everything `primary` had
 * written when this was called, e.g. before reading there what was just
 * written here.
 */
export async function waitForReplay(primary: PgCluster, standby: PgCluster, timeoutMs = 30_000): Promise<void> {
  const [{ lsn }] = (await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')) as [{ lsn: string }];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await standby.query<{ caught_up: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught_up', [lsn]);
    if (row?.caught_up) return;
    if (Date.now() > deadline) throw new Error(`${standby.name} did not replay up to ${lsn} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
