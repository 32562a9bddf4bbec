import { findAppliedMigrations, loadMigrations, type Db } from '../db/index.js';
import type { LoopLiveness } from '../engine/worker.js';

/** Whether a worker's claim loop is going round (engine/worker.ts Worker.liveness()). */
export type WorkerLiveness = LoopLiveness;

export interface ReadinessOptions {
  db: Db;
  /** The process's worker, when it runs one; absent, the worker check is left out. */
  workerLiveness?: (() => WorkerLiveness) | undefined;
  /** How long the database may take to answer before the process counts as not ready (default DEFAULT_READY_DB_TIMEOUT_MS). */
  databaseTimeoutMs?: number | undefined;
  /** The migration versions this code knows (default: the files of src/db/migrations, read once). */
  knownMigrations?: (() => Promise<readonly number[]>) | undefined;
  /** Clock (tests move it). Default Date.now. */
  now?: (() => number) | undefined;
}

export type ReadinessCheckName = 'database' | 'migrations' | 'worker';

export interface ReadinessCheck {
  name: ReadinessCheckName;
  ok: boolean;
  /** Why it failed (absent when ok). */
  reason?: string;
}

export interface Readiness {
  ready: boolean;
  checks: ReadinessCheck[];
}

/**
 * Kubernetes probes a pod every few seconds and takes it out of service
 * after a few failures; a database that has not answered `SELECT 1` in 2 s
 * (PGlite included, where the probe waits behind the one connection's
 * queue) is one the process cannot serve from either.
 */
export const DEFAULT_READY_DB_TIMEOUT_MS = 2_000;

let knownVersions: Promise<readonly number[]> | undefined;

/** The versions of this code's migration files, read from disk once per process. */
function migrationVersions(): Promise<readonly number[]> {
  knownVersions ??= loadMigrations().then(
    (list) => list.map((m) => m.version),
    (err: unknown) => {
      knownVersions = undefined;
      throw err;
    },
  );
  return knownVersions;
}

/** `work`, or a rejection saying what timed out once `ms` have passed. */
function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whether this process can do its work now (GET /health/ready): the
 * database answers within the timeout, every migration this code knows is
 * applied, and, in a process that runs a worker, the worker's loop is going
 * round (started, and went round within its bound). Every check is reported
 * with why it failed; a check that cannot run because the database did not
 * answer says so.
 */
export async function checkReadiness(options: ReadinessOptions): Promise<Readiness> {
  const timeoutMs = options.databaseTimeoutMs ?? DEFAULT_READY_DB_TIMEOUT_MS;
  const checks: ReadinessCheck[] = [];

  let reachable = true;
  try {
    await within(timeoutMs, 'the database', options.db.query('SELECT 1'));
    checks.push({ name: 'database', ok: true });
  } catch (err) {
    reachable = false;
    checks.push({ name: 'database', ok: false, reason: message(err) });
  }

  if (!reachable) {
    checks.push({ name: 'migrations', ok: false, reason: 'not checked: the database did not answer' });
  } else {
    try {
      const [known, applied] = await Promise.all([
        (options.knownMigrations ?? migrationVersions)(),
        within(timeoutMs, 'the database', findAppliedMigrations(options.db)),
      ]);
      const have = new Set(applied);
      const missing = known.filter((v) => !have.has(v));
      checks.push(
        missing.length === 0
          ? { name: 'migrations', ok: true }
          : { name: 'migrations', ok: false, reason: `${missing.length} migration(s) not applied: ${missing.join(', ')}` },
      );
    } catch (err) {
      checks.push({ name: 'migrations', ok: false, reason: message(err) });
    }
  }

  if (options.workerLiveness) {
    const loop = options.workerLiveness();
    const now = (options.now ?? Date.now)();
    if (!loop.running) checks.push({ name: 'worker', ok: false, reason: 'the worker is not running (stopped or stopping)' });
    else if (loop.lastRoundAt === 0) checks.push({ name: 'worker', ok: false, reason: 'the worker loop has not gone round yet' });
    else if (now - loop.lastRoundAt > loop.staleAfterMs) {
      checks.push({
        name: 'worker',
        ok: false,
        reason: `the worker loop last went round ${Math.round((now - loop.lastRoundAt) / 1000)} s ago (stuck after ${Math.round(loop.staleAfterMs / 1000)} s)`,
      });
    } else checks.push({ name: 'worker', ok: true });
  }

  return { ready: checks.every((c) => c.ok), checks };
}
