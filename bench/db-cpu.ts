import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { log, round } from './lib.js';

/**
 * CPU time of the PostgreSQL server, read from /proc, so a scenario can say
 * what each run cost the database besides what it cost the client.
 *
 * The server is the postmaster and its children (one backend per
 * connection, checkpointer, walwriter, background writer, …). A child that
 * exits (a pool closing an idle connection, an autovacuum worker) is reaped
 * by the postmaster and its CPU moves into the postmaster's cutime/cstime,
 * so "the server" = postmaster utime+stime+cutime+cstime + every live child's
 * utime+stime+cutime+cstime, and a delta of that over a round counts every
 * process that ran in it, including connections opened and closed meanwhile.
 * (A child that exits between reading the postmaster and reading the
 * children is missed; one that is reaped in between is counted twice. Both
 * are a few ticks, next to the thousands of a round.)
 *
 * The unit is the clock tick (`getconf CLK_TCK`, 100 Hz here): a round of
 * 10 s at 50 runs/s costs a few hundred to a few thousand ticks, so the
 * ±1 tick per process per sample is well under 1%.
 *
 * The server is shared: other databases' backends (a test suite running
 * beside the bench) and the shared background processes count in the
 * server-wide figure. `ownTicks` is the part that belongs to one database:
 * the backends pg_stat_activity lists for it, plus the server's background
 * processes (checkpointer, walwriter, …: they work for every database, so
 * other load on the server shows there too). On a shared machine it is the
 * figure to read; its blind spot is a backend of that database that exits
 * between the two samples (the bench's pools keep theirs open through a
 * round). On a quiet machine the two agree.
 *
 * Only works when the server runs on this machine and /proc shows its
 * processes; otherwise `open` returns null and the scenario reports null.
 */

export interface CpuSample {
  /** Whole server, in clock ticks. */
  serverTicks: number;
  /** utime+stime+cutime+cstime per live child of the postmaster. */
  children: Map<number, number>;
  /** Children that were, at this sample, this database's backends or server background processes. */
  own: Set<number>;
  /** This process (process.cpuUsage), µs. */
  process: NodeJS.CpuUsage;
  /** Transactions committed or rolled back in this database so far (pg_stat_database; backends report them within ~1 s). */
  xacts: number;
}

export interface CpuDelta {
  /** Server CPU in the interval, ms. */
  serverMs: number;
  /** This database's backends + background processes, ms (see above). */
  ownMs: number;
  /** This process, user + system, ms. */
  processMs: number;
  /** Transactions in this database (the sampler's own two statements included). */
  xacts: number;
  /** ms of each child that ran in the interval (for picking out one connection's backend). */
  byPid: Map<number, number>;
}

interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime, ticks. */
  ticks: number;
}

/** /proc/<pid>/stat: the command name is in parentheses and may hold spaces, so fields are counted after the last ')'. */
function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // exited meanwhile
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: [0] state, [1] ppid, …, [11] utime, [12] stime, [13] cutime, [14] cstime (proc(5) fields 3, 4, 14–17).
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  return { ppid: Number(f[1]), ticks: utime + stime + Number(f[13]) + Number(f[14]) };
}

function clockTicksPerSecond(): number {
  try {
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(hz) && hz > 0) return hz;
  } catch {
    // fall through
  }
  return 100;
}

export class DbCpuSampler {
  private constructor(
    private readonly client: pg.Client,
    private readonly postmaster: number,
    private readonly msPerTick: number,
    private readonly selfPid: number,
  ) {}

  /**
   * Find the postmaster of the server `url` points at: our backend's parent
   * (every backend is forked by the postmaster). Keeps one connection open,
   * to `url`'s database, to list that database's backends at each sample.
   */
  static async open(url: string): Promise<DbCpuSampler | null> {
    const client = new pg.Client({ connectionString: url, application_name: 'bench-db-cpu' });
    // Dropping the scratch database ends this connection; that must not crash the process.
    client.on('error', (err) => log(`db-cpu connection: ${err.message}`));
    await client.connect();
    try {
      const { rows } = await client.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
      const backend = rows[0]!.pid;
      const stat = readStat(backend);
      const parent = stat ? readStat(stat.ppid) : null;
      let comm = '';
      try {
        comm = stat ? readFileSync(`/proc/${stat.ppid}/comm`, 'utf8').trim() : '';
      } catch {
        // not visible
      }
      if (!stat || !parent || !/postgres|postmaster/.test(comm)) {
        log(`db-cpu: backend ${backend} is not visible in /proc (server on another machine or namespace); database CPU not measured`);
        await client.end();
        return null;
      }
      const hz = clockTicksPerSecond();
      return new DbCpuSampler(client, stat.ppid, 1000 / hz, backend);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  async sample(): Promise<CpuSample> {
    // Which children are this database's backends or the server's own processes (a query, so before reading /proc).
    const { rows } = await this.client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE (datname = current_database() OR backend_type <> 'client backend') AND pid <> pg_backend_pid()`,
    );
    const { rows: tx } = await this.client.query<{ n: string }>(
      `SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`,
    );
    const self = process.cpuUsage();
    const pm = readStat(this.postmaster);
    if (!pm) throw new Error(`db-cpu: postmaster ${this.postmaster} is gone`);
    const children = new Map<number, number>();
    let serverTicks = pm.ticks;
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      const s = readStat(pid);
      if (!s || s.ppid !== this.postmaster) continue;
      children.set(pid, s.ticks);
      serverTicks += s.ticks;
    }
    return { serverTicks, children, own: new Set(rows.map((r) => r.pid).filter((p) => p !== this.selfPid)), process: self, xacts: Number(tx[0]?.n ?? 0) };
  }

  delta(a: CpuSample, b: CpuSample): CpuDelta {
    let ownTicks = 0;
    const byPid = new Map<number, number>();
    for (const [pid, ticks] of b.children) {
      // A pid new since `a` started within the interval: all of its time is in it.
      const d = ticks - (a.children.get(pid) ?? 0);
      if (d > 0) byPid.set(pid, d * this.msPerTick);
      if (b.own.has(pid) || a.own.has(pid)) ownTicks += d;
    }
    return {
      serverMs: round((b.serverTicks - a.serverTicks) * this.msPerTick, 1),
      ownMs: round(ownTicks * this.msPerTick, 1),
      processMs: round((b.process.user - a.process.user + b.process.system - a.process.system) / 1000, 1),
      xacts: b.xacts - a.xacts,
      byPid,
    };
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
