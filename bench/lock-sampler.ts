import pg from 'pg';
import { now, round } from './lib.js';

/**
 * Heavyweight-lock waits in one database, sampled from `pg_locks` joined with
 * `pg_stat_activity` every `intervalMs` on a connection of its own (for
 * `bench scale-out`).
 *
 * Each sample lists the backends of the database waiting for a lock (a lock
 * not granted, `wait_event_type = 'Lock'`). The wait time is integrated: a
 * backend seen waiting adds the time since the previous sample, so the total
 * estimates the sum of all lock waits without bias, although a single wait
 * shorter than the interval is seen only with the probability of its length
 * over the interval. `longestMs` is the longest single wait seen
 * (`clock_timestamp() - state_change`: the waiting statement's time so far,
 * which includes whatever it did before it began to wait).
 *
 * A row-lock wait is a wait for the holder's transaction id (`transactionid`);
 * the waiter then holds the tuple lock of the row it wants, which names the
 * relation, and later waiters of the same row wait on that tuple lock
 * (`tuple`, with the relation). Waits on a unique index entry another
 * transaction is inserting, and advisory locks, have no relation.
 */
export interface LockWaitReport {
  samples: number;
  /** Samples in which some backend waited. */
  samplesWithWaits: number;
  /** Sum of the sampled wait time of all backends, ms. */
  totalWaitMs: number;
  longestMs: number;
  /** Wait time per (lock type, relation, mode), largest first. */
  byRelation: { locktype: string; relation: string | null; mode: string; waitMs: number; seen: number }[];
  /** Wait time per waiting statement (its first 70 characters), largest first. */
  byStatement: { statement: string; waitMs: number; seen: number }[];
}

interface WaitRow {
  pid: number;
  locktype: string;
  mode: string;
  relation: string | null;
  waited_ms: number;
  statement: string;
}

const SAMPLE_SQL = `
  SELECT w.pid, w.locktype, w.mode,
         coalesce(w.relation, t.relation)::regclass::text AS relation,
         (extract(epoch FROM clock_timestamp() - a.state_change) * 1000)::float8 AS waited_ms,
         left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70) AS statement
    FROM pg_locks w
    JOIN pg_stat_activity a ON a.pid = w.pid
    LEFT JOIN LATERAL (
      SELECT h.relation FROM pg_locks h WHERE h.pid = w.pid AND h.locktype = 'tuple' AND h.granted LIMIT 1
    ) t ON true
   WHERE NOT w.granted AND a.datname = current_database()`;

export class LockSampler {
  private running = false;
  private done: Promise<void> | undefined;
  private samples = 0;
  private samplesWithWaits = 0;
  private totalWaitMs = 0;
  private longestMs = 0;
  private readonly relations = new Map<string, { locktype: string; relation: string | null; mode: string; waitMs: number; seen: number }>();
  private readonly statements = new Map<string, { waitMs: number; seen: number }>();

  private constructor(
    private readonly client: pg.Client,
    private readonly intervalMs: number,
  ) {}

  static async open(url: string, intervalMs = 20): Promise<LockSampler> {
    const client = new pg.Client({ connectionString: url, application_name: 'bench-lock-sampler' });
    await client.connect();
    return new LockSampler(client, intervalMs);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.done = this.loop();
  }

  /** Stop sampling and return what was seen since start(). */
  async stop(): Promise<LockWaitReport> {
    this.running = false;
    await this.done;
    return {
      samples: this.samples,
      samplesWithWaits: this.samplesWithWaits,
      totalWaitMs: round(this.totalWaitMs, 1),
      longestMs: round(this.longestMs, 1),
      byRelation: [...this.relations.values()].sort((a, b) => b.waitMs - a.waitMs).map((r) => ({ ...r, waitMs: round(r.waitMs, 1) })),
      byStatement: [...this.statements]
        .map(([statement, s]) => ({ statement, waitMs: round(s.waitMs, 1), seen: s.seen }))
        .sort((a, b) => b.waitMs - a.waitMs),
    };
  }

  async close(): Promise<void> {
    this.running = false;
    await this.done;
    await this.client.end();
  }

  private async loop(): Promise<void> {
    let previous = now();
    while (this.running) {
      const { rows } = await this.client.query<WaitRow>(SAMPLE_SQL);
      const at = now();
      const dt = at - previous;
      previous = at;
      this.samples++;
      // A backend waiting on two locks at once is impossible; one row per pid.
      if (rows.length > 0) this.samplesWithWaits++;
      for (const r of rows) {
        this.totalWaitMs += dt;
        this.longestMs = Math.max(this.longestMs, r.waited_ms);
        const key = `${r.locktype}|${r.relation ?? ''}|${r.mode}`;
        const rel = this.relations.get(key) ?? { locktype: r.locktype, relation: r.relation, mode: r.mode, waitMs: 0, seen: 0 };
        rel.waitMs += dt;
        rel.seen++;
        this.relations.set(key, rel);
        const st = this.statements.get(r.statement) ?? { waitMs: 0, seen: 0 };
        st.waitMs += dt;
        st.seen++;
        this.statements.set(r.statement, st);
      }
      const rest = this.intervalMs - (now() - at);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
  }
}
