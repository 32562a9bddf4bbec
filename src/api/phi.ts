import type { FastifyRequest } from 'fastify';
import type { Queryable } from '../db/index.js';
import { findPhiPaths, insertPhiAccesses, type AccessContext, type PhiAccess } from '../store/audit.js';
import type { Job } from '../store/index.js';
import { uuidv7 } from '../util/ids.js';
import { isPlainObject } from '../util/json.js';

/**
 * PHI read auditing (every read of protected health information must leave a
 * record of who saw what): a workflow definition lists its PHI
 * paths (`"phi": ["input.memberId", "result"]`); every API response that
 * carries one of them writes a phi_audit_log row per resource, in the
 * request's own transaction, so a read that was answered and its audit row
 * commit together or not at all.
 */

/** (workflow, version) → PHI paths. Versions are immutable, so entries never go stale. */
const policyCache = new Map<string, string[]>();
const CACHE_LIMIT = 10_000;

async function phiPolicies(db: Queryable, organizationId: string, jobs: readonly Job[]): Promise<Map<string, string[]>> {
  const wanted = new Map<string, { workflowId: string; version: number }>();
  for (const j of jobs) {
    const key = `${j.workflowId}:${j.workflowVersion}`;
    if (!policyCache.has(key)) wanted.set(key, { workflowId: j.workflowId, version: j.workflowVersion });
  }
  if (wanted.size > 0) {
    const found = await findPhiPaths(db, organizationId, [...wanted.values()]);
    if (policyCache.size + found.size > CACHE_LIMIT) policyCache.clear();
    for (const [key, paths] of found) policyCache.set(key, paths);
  }
  return policyCache;
}

/**
 * The PHI paths of each job's workflow version, by job id (empty for a
 * workflow that declares none): what `?phi=mask` masks instead of auditing.
 */
export async function phiPathsOf(db: Queryable, organizationId: string, jobs: readonly Job[]): Promise<Map<string, string[]>> {
  const policies = await phiPolicies(db, organizationId, jobs);
  return new Map(jobs.map((j) => [j.id, policies.get(`${j.workflowId}:${j.workflowVersion}`) ?? []]));
}

/** Whether `path` ("input.member.id", "result") has a value in `root`. */
function present(path: string, roots: { input: unknown; result: unknown }): boolean {
  const [head, ...rest] = path.split('.');
  let value: unknown = head === 'input' ? roots.input : roots.result;
  for (const key of rest) {
    if (!isPlainObject(value) || !Object.hasOwn(value, key)) return false;
    value = value[key];
  }
  return value !== undefined && value !== null;
}

/** Who made the request: its key's user (`user:<id>`), or the key itself for a key without a user. */
export function actorName(req: FastifyRequest): string {
  return req.principal.userId ? `user:${req.principal.userId}` : `key:${req.principal.apiKeyId}`;
}

export function accessContext(req: FastifyRequest): AccessContext {
  const ua = req.headers['user-agent'];
  return {
    actor: actorName(req),
    apiKeyId: req.principal.apiKeyId,
    ip: req.ip ? req.ip.slice(0, 64) : null,
    userAgent: typeof ua === 'string' ? ua.slice(0, 500) : null,
  };
}

/** Audit the PHI in job responses (GET /v1/jobs/:id, list pages): one row per job that carried any. */
export async function auditJobReads(db: Queryable, req: FastifyRequest, jobs: readonly Job[]): Promise<void> {
  if (jobs.length === 0) return;
  const policies = await phiPolicies(db, req.principal.organizationId, jobs);
  const accesses: PhiAccess[] = [];
  for (const j of jobs) {
    const paths = policies.get(`${j.workflowId}:${j.workflowVersion}`) ?? [];
    const fields = paths.filter((p) => present(p, { input: j.input, result: j.result }));
    if (fields.length > 0) {
      accesses.push({ id: uuidv7(), resourceType: 'JOB', resourceId: j.id, jobId: j.id, workflowId: j.workflowId, fields });
    }
  }
  await insertPhiAccesses(db, req.principal.organizationId, accessContext(req), accesses);
}

/**
 * Audit a stream read of a PHI workflow's job. Stream rows carry step
 * outputs and log lines that may hold any of the job's data, so any
 * non-empty page of a PHI workflow's stream counts as a read of all its
 * PHI paths.
 */
export async function auditStreamRead(db: Queryable, req: FastifyRequest, job: Job, rowsReturned: number): Promise<void> {
  if (rowsReturned === 0) return;
  const policies = await phiPolicies(db, req.principal.organizationId, [job]);
  const fields = policies.get(`${job.workflowId}:${job.workflowVersion}`) ?? [];
  if (fields.length === 0) return;
  await insertPhiAccesses(db, req.principal.organizationId, accessContext(req), [
    { id: uuidv7(), resourceType: 'STREAM', resourceId: job.id, jobId: job.id, workflowId: job.workflowId, fields },
  ]);
}

/**
 * Audit handing out a screenshot of a PHI workflow's job (its bytes, or a
 * signed URL to them): a screen of a patient's record is PHI whatever the
 * workflow's paths name, so the row lists all of them. Listing metadata
 * carries no image and is not audited.
 */
export async function auditScreenshotRead(db: Queryable, req: FastifyRequest, job: Job, screenshotId: string): Promise<void> {
  const policies = await phiPolicies(db, req.principal.organizationId, [job]);
  const fields = policies.get(`${job.workflowId}:${job.workflowVersion}`) ?? [];
  if (fields.length === 0) return;
  await insertPhiAccesses(db, req.principal.organizationId, accessContext(req), [
    { id: uuidv7(), resourceType: 'SCREENSHOT', resourceId: screenshotId, jobId: job.id, workflowId: job.workflowId, fields },
  ]);
}
