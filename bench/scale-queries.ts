/**
 * The queries `bench scale` times, each in two forms: the Stepwise form
 * (the real src/read and src/store functions the API routes call) and the
 * naive on-the-fly form that does not scale (per-workflow
 * N+1 stats; percentile_cont and COUNT over jobs; the stream scanned for
 * step durations; a job's stream read without its time bounds; the job list
 * from jobs with OFFSET paging). Parameters are drawn from a seeded PRNG, so
 * both forms of a query see the same sequence of parameters.
 */
import type { Db } from '../src/db/index.js';
import {
  getDurationStats,
  getStepStats,
  getTimeSeries,
  getWorkflowStats,
  listJobSummaries,
  replayJobEvents,
  type AnalyticsRange,
  type JobEvent,
  type JobListFilter,
} from '../src/read/index.js';
import { readJobEvents } from '../src/lifecycle/index.js';
import { findJob, kindName, levelName, type JobStatus } from '../src/store/index.js';

/** What the queries draw their parameters from (read once from the dataset). */
export interface ScaleContext {
  organizations: { id: string; workflowIds: string[]; clientIds: string[] }[];
  /** Jobs sampled at random across the whole dataset, for job-level queries and list cursors. */
  sampleJobs: { id: string; organizationId: string; lastSeq: number; createdUs: string; runNumber: number }[];
  from: Date;
  to: Date;
}

export type Variant = 'stepwise' | 'naive';

export interface ScaleQuery {
  name: string;
  /** One call with parameters drawn from `rnd`; resolves when the result is in memory. */
  run: Record<Variant, (db: Db, rnd: Rng) => Promise<unknown>>;
}

/** A small seeded PRNG (mulberry32): the same seed gives both variants the same parameters. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

const DAY_MS = 24 * 3600 * 1000;
/** Dashboard ranges: last day, week, month, quarter, year. */
const RANGE_DAYS = [1, 7, 30, 90, 365];
const PAGE_SIZE = 50;
const TERMINAL = ['COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'];

function drawRange(ctx: ScaleContext, rnd: Rng): AnalyticsRange {
  const span = ctx.to.getTime() - ctx.from.getTime();
  const len = Math.min(rnd.pick(RANGE_DAYS) * DAY_MS, span);
  // Ends on a whole hour, as a dashboard's "last N days" does.
  const end = ctx.from.getTime() + len + Math.floor(rnd.next() * (span - len + 1));
  const to = new Date(Math.ceil(end / 3_600_000) * 3_600_000);
  return { from: new Date(to.getTime() - len), to };
}

/** A list filter as a dashboard user sets it: none, a status set, a workflow, a client, a week, an error code. */
function drawFilter(ctx: ScaleContext, org: ScaleContext['organizations'][number], rnd: Rng): Omit<JobListFilter, 'limit'> {
  const kind = Math.floor(rnd.next() * 6);
  switch (kind) {
    case 1:
      return { statuses: rnd.pick<JobStatus[]>([['FAILED'], ['FAILED', 'TIMED_OUT'], ['COMPLETED', 'PARTIAL_SUCCESS']]) };
    case 2:
      return { workflowId: rnd.pick(org.workflowIds) };
    case 3:
      return { clientId: rnd.pick(org.clientIds) };
    case 4: {
      const r = drawRange(ctx, rnd);
      return { createdFrom: new Date(r.to.getTime() - 7 * DAY_MS), createdTo: r.to };
    }
    case 5:
      return { errorCode: rnd.pick(['HTTP_503', 'ELEMENT_NOT_FOUND', 'LOGIN_FAILED']) };
    default:
      return {};
  }
}

/** The naive job list: straight from jobs, names joined, filters as SQL conditions. */
async function naiveJobList(db: Db, orgId: string, f: Omit<JobListFilter, 'limit'>, offset: number): Promise<unknown[]> {
  const params: unknown[] = [orgId];
  const where = ['j.organization_id = $1'];
  const add = (sql: (p: string) => string, v: unknown) => {
    params.push(v);
    where.push(sql(`$${params.length}`));
  };
  if (f.statuses) add((p) => `j.status = ANY(${p}::text[])`, f.statuses);
  if (f.workflowId) add((p) => `j.workflow_id = ${p}`, f.workflowId);
  if (f.clientId) add((p) => `j.client_id = ${p}`, f.clientId);
  if (f.createdFrom) add((p) => `j.created_at >= ${p}`, f.createdFrom.toISOString());
  if (f.createdTo) add((p) => `j.created_at < ${p}`, f.createdTo.toISOString());
  if (f.errorCode) add((p) => `j.error_code = ${p}`, f.errorCode);
  params.push(PAGE_SIZE + 1, offset);
  const { rows } = await db.query(
    `SELECT j.*, w.name AS workflow_name, c.name AS client_name
       FROM stepwise.jobs j
       JOIN stepwise.workflows w ON w.id = j.workflow_id
       LEFT JOIN stepwise.clients c ON c.id = j.client_id
      WHERE ${where.join(' AND ')}
      ORDER BY j.created_at DESC, j.run_number DESC
      LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return rows;
}

/** A job's stream without its time bounds (every month partition's index probed), all rows, replayed in memory. */
async function naiveJobEvents(db: Db, orgId: string, jobId: string, upToSeq: number): Promise<JobEvent[]> {
  const { rows } = await db.query<{ seq: number; ts: Date; kind: number; level: number; step_index: number | null; message: string; data: unknown }>(
    `SELECT seq, ts, kind, level, step_index, message, data FROM stepwise.execution_log
      WHERE organization_id = $1 AND job_id = $2 AND seq <= $3 ORDER BY seq`,
    [orgId, jobId, upToSeq],
  );
  return rows
    .filter((r) => r.kind !== 0)
    .map((r) => ({ seq: r.seq, ts: r.ts, kind: kindName(r.kind), level: levelName(r.level), stepIndex: r.step_index, message: r.message, data: r.data }));
}

async function mustFindJob(db: Db, orgId: string, jobId: string) {
  const job = await findJob(db, orgId, jobId);
  if (!job) throw new Error(`sampled job ${jobId} not found`);
  return job;
}

/** The catalogue: dashboard queries (issue 4 item 6) and analytics queries (item 5). */
export function scaleQueries(ctx: ScaleContext): ScaleQuery[] {
  const org = (rnd: Rng) => rnd.pick(ctx.organizations);
  return [
    {
      name: 'jobs_list',
      run: {
        stepwise: (db, rnd) => {
          const o = org(rnd);
          return listJobSummaries(db, o.id, { ...drawFilter(ctx, o, rnd), limit: PAGE_SIZE });
        },
        naive: (db, rnd) => {
          const o = org(rnd);
          return naiveJobList(db, o.id, drawFilter(ctx, o, rnd), 0);
        },
      },
    },
    {
      // A later page: Stepwise continues from a keyset cursor (a sampled job's position), naive pages with OFFSET.
      name: 'jobs_list_page',
      run: {
        stepwise: (db, rnd) => {
          const j = rnd.pick(ctx.sampleJobs);
          const o = ctx.organizations.find((x) => x.id === j.organizationId)!;
          rnd.next(); // the naive form's page number: keeps both forms' parameter sequences in step
          return listJobSummaries(db, o.id, {
            ...drawFilter(ctx, o, rnd),
            after: { createdUs: j.createdUs, runNumber: j.runNumber },
            limit: PAGE_SIZE,
          });
        },
        naive: (db, rnd) => {
          const j = rnd.pick(ctx.sampleJobs);
          const o = ctx.organizations.find((x) => x.id === j.organizationId)!;
          const page = Math.floor(rnd.next() * 200);
          return naiveJobList(db, o.id, drawFilter(ctx, o, rnd), page * PAGE_SIZE);
        },
      },
    },
    {
      name: 'workflow_stats',
      run: {
        stepwise: (db, rnd) => getWorkflowStats(db, org(rnd).id, drawRange(ctx, rnd)),
        // The N+1 form: the workflows, then one query per workflow (each aggregated in SQL, kinder than loading every job).
        naive: async (db, rnd) => {
          const orgId = org(rnd).id;
          const r = drawRange(ctx, rnd);
          const { rows: wfs } = await db.query<{ id: string; name: string }>(
            `SELECT id, name FROM stepwise.workflows WHERE organization_id = $1 AND deleted_at IS NULL`,
            [orgId],
          );
          const out: unknown[] = [];
          for (const wf of wfs) {
            const { rows } = await db.query(
              `SELECT count(*) AS total, count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
                      count(*) FILTER (WHERE status = 'FAILED') AS failed, avg(duration_ms) AS avg,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS median
                 FROM stepwise.jobs
                WHERE organization_id = $1 AND workflow_id = $2 AND status = ANY($3::text[])
                  AND completed_at >= $4 AND completed_at < $5`,
              [orgId, wf.id, TERMINAL, r.from.toISOString(), r.to.toISOString()],
            );
            out.push({ ...wf, ...rows[0] });
          }
          return out;
        },
      },
    },
    {
      // Half the calls for one workflow, half for the whole organization.
      name: 'durations',
      run: {
        stepwise: (db, rnd) => {
          const o = org(rnd);
          const r = drawRange(ctx, rnd);
          return getDurationStats(db, o.id, r, rnd.next() < 0.5 ? { workflowId: rnd.pick(o.workflowIds) } : {});
        },
        naive: async (db, rnd) => {
          const o = org(rnd);
          const r = drawRange(ctx, rnd);
          const wf = rnd.next() < 0.5 ? rnd.pick(o.workflowIds) : null;
          const { rows } = await db.query(
            `SELECT count(*) AS total, avg(duration_ms) AS avg,
                    percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS p
               FROM stepwise.jobs
              WHERE organization_id = $1 AND ($2::uuid IS NULL OR workflow_id = $2) AND status = ANY($3::text[])
                AND completed_at >= $4 AND completed_at < $5`,
            [o.id, wf, TERMINAL, r.from.toISOString(), r.to.toISOString()],
          );
          return rows;
        },
      },
    },
    {
      name: 'step_stats',
      run: {
        stepwise: (db, rnd) => {
          const o = org(rnd);
          return getStepStats(db, o.id, rnd.pick(o.workflowIds), drawRange(ctx, rnd));
        },
        // Step durations scanned out of the stream rows (STEP_COMPLETED / STEP_FAILED) of the range's partitions.
        naive: async (db, rnd) => {
          const o = org(rnd);
          const wf = rnd.pick(o.workflowIds);
          const r = drawRange(ctx, rnd);
          const { rows } = await db.query(
            `SELECT l.step_index, count(*) AS executions, count(*) FILTER (WHERE l.kind = 12) AS failures,
                    avg((l.data->>'durationMs')::float8) AS avg,
                    percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY (l.data->>'durationMs')::float8) AS p
               FROM stepwise.execution_log l JOIN stepwise.jobs j ON j.id = l.job_id
              WHERE l.organization_id = $1 AND j.workflow_id = $2 AND l.kind IN (11, 12)
                AND l.ts >= $3 AND l.ts < $4
              GROUP BY l.step_index ORDER BY l.step_index`,
            [o.id, wf, r.from.toISOString(), r.to.toISOString()],
          );
          return rows;
        },
      },
    },
    {
      // Hourly points up to a week, daily beyond; half the calls for one workflow.
      name: 'timeseries',
      run: {
        stepwise: (db, rnd) => {
          const o = org(rnd);
          const r = drawRange(ctx, rnd);
          const wf = rnd.next() < 0.5 ? rnd.pick(o.workflowIds) : undefined;
          return getTimeSeries(db, o.id, r, r.to.getTime() - r.from.getTime() <= 7 * DAY_MS ? 'hour' : 'day', { workflowId: wf });
        },
        naive: async (db, rnd) => {
          const o = org(rnd);
          const r = drawRange(ctx, rnd);
          const wf = rnd.next() < 0.5 ? rnd.pick(o.workflowIds) : null;
          const { rows } = await db.query(
            `SELECT date_trunc($6, completed_at, 'UTC') AS period, count(*) AS total,
                    count(*) FILTER (WHERE status = 'COMPLETED') AS completed, count(*) FILTER (WHERE status = 'FAILED') AS failed,
                    avg(duration_ms) AS avg, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
               FROM stepwise.jobs
              WHERE organization_id = $1 AND ($2::uuid IS NULL OR workflow_id = $2) AND status = ANY($3::text[])
                AND completed_at >= $4 AND completed_at < $5
              GROUP BY 1 ORDER BY 1`,
            [o.id, wf, TERMINAL, r.from.toISOString(), r.to.toISOString(), r.to.getTime() - r.from.getTime() <= 7 * DAY_MS ? 'hour' : 'day'],
          );
          return rows;
        },
      },
    },
    {
      // What GET /v1/jobs/:id/timeline does: the job, then its events through the lifecycle reader (hot rows here).
      name: 'job_timeline',
      run: {
        stepwise: async (db, rnd) => {
          const j = rnd.pick(ctx.sampleJobs);
          const { events } = await readJobEvents(db, undefined, j.organizationId, await mustFindJob(db, j.organizationId, j.id));
          return replayJobEvents(events).steps;
        },
        naive: async (db, rnd) => {
          const j = rnd.pick(ctx.sampleJobs);
          await mustFindJob(db, j.organizationId, j.id);
          return replayJobEvents(await naiveJobEvents(db, j.organizationId, j.id, 2_147_483_647)).steps;
        },
      },
    },
    {
      // GET /v1/jobs/:id/state?at=<seq> with a random sequence number of the job.
      name: 'job_state',
      run: {
        stepwise: async (db, rnd) => {
          const j = rnd.pick(ctx.sampleJobs);
          const at = 1 + Math.floor(rnd.next() * j.lastSeq);
          const { events } = await readJobEvents(db, undefined, j.organizationId, await mustFindJob(db, j.organizationId, j.id), at);
          return replayJobEvents(events);
        },
        naive: async (db, rnd) => {
          const j = rnd.pick(ctx.sampleJobs);
          const at = 1 + Math.floor(rnd.next() * j.lastSeq);
          await mustFindJob(db, j.organizationId, j.id);
          return replayJobEvents(await naiveJobEvents(db, j.organizationId, j.id, at));
        },
      },
    },
  ];
}
