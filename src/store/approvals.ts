import { pgArray, type Queryable } from '../db/index.js';
import type { Role } from './api-keys.js';
import { TERMINAL_STATUSES, type JobStatus } from './jobs.js';

/** Where an approval stands; EXPIRED means nobody decided in time and the step's onTimeout decided. */
export type StoredApprovalStatus = 'PENDING' | 'APPROVED' | 'REJECTED' | 'EXPIRED';
export type DecisionKind = 'APPROVE' | 'REJECT';

/** An approval with the names a reader needs (its job's run number and status, its workflow). */
export interface StoredApproval {
  id: string;
  organizationId: string;
  jobId: string;
  stepPath: string;
  title: string;
  approverRoles: Role[];
  approverUsers: string[];
  excludeInitiator: boolean;
  initiatedBy: string | null;
  required: number;
  form: Record<string, unknown> | null;
  status: StoredApprovalStatus;
  timeoutOutcome: 'APPROVED' | 'REJECTED' | null;
  requestedAt: Date;
  expiresAt: Date | null;
  decidedAt: Date | null;
  /** Past expires_at by the database's clock (still PENDING until the step closes it). */
  expired: boolean;
  /** APPROVE decisions so far. */
  approveCount: number;
  job: { runNumber: number; status: JobStatus };
  workflow: { id: string; name: string };
}

interface ApprovalRow {
  id: string;
  organization_id: string;
  job_id: string;
  step_path: string;
  title: string;
  approver_roles: Role[];
  approver_users: string[];
  exclude_initiator: boolean;
  initiated_by: string | null;
  required: number;
  form: Record<string, unknown> | null;
  status: StoredApprovalStatus;
  timeout_outcome: 'APPROVED' | 'REJECTED' | null;
  requested_at: Date;
  expires_at: Date | null;
  decided_at: Date | null;
  expired: boolean;
  approve_count: number;
  run_number: string | number;
  job_status: JobStatus;
  workflow_id: string;
  workflow_name: string;
}

const APPROVAL_COLUMNS = `a.id, a.organization_id, a.job_id, a.step_path, a.title, a.approver_roles::text[] AS approver_roles,
  a.approver_users::text[] AS approver_users, a.exclude_initiator, a.initiated_by, a.required, a.form, a.status, a.timeout_outcome,
  a.requested_at, a.expires_at, a.decided_at, coalesce(a.expires_at <= now(), false) AS expired,
  (SELECT count(*)::int FROM stepwise.approval_decisions d WHERE d.approval_id = a.id AND d.decision = 'APPROVE') AS approve_count,
  j.run_number, j.status AS job_status, w.id AS workflow_id, w.name AS workflow_name`;

const APPROVAL_FROM = `stepwise.approvals a
  JOIN stepwise.jobs j ON j.id = a.job_id
  JOIN stepwise.workflows w ON w.id = j.workflow_id`;

function toApproval(r: ApprovalRow): StoredApproval {
  return {
    id: r.id,
    organizationId: r.organization_id,
    jobId: r.job_id,
    stepPath: r.step_path,
    title: r.title,
    approverRoles: r.approver_roles,
    approverUsers: r.approver_users,
    excludeInitiator: r.exclude_initiator,
    initiatedBy: r.initiated_by,
    required: r.required,
    form: r.form,
    status: r.status,
    timeoutOutcome: r.timeout_outcome,
    requestedAt: r.requested_at,
    expiresAt: r.expires_at,
    decidedAt: r.decided_at,
    expired: r.expired,
    approveCount: r.approve_count,
    job: { runNumber: Number(r.run_number), status: r.job_status },
    workflow: { id: r.workflow_id, name: r.workflow_name },
  };
}

export interface NewApproval {
  id: string;
  organizationId: string;
  jobId: string;
  stepPath: string;
  title: string;
  approverRoles: readonly string[];
  approverUsers: readonly string[];
  excludeInitiator: boolean;
  initiatedBy: string | null;
  required: number;
  form: Record<string, unknown> | null;
  expiresAt: Date | null;
}

/**
 * Insert the approval of a job's step, unless that (job, path) has one
 * already: a step that runs again (a takeover, a resumed job) gets the one
 * it opened before. Returns its id and whether this call created it.
 */
export async function insertApproval(tx: Queryable, a: NewApproval): Promise<{ id: string; created: boolean }> {
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO stepwise.approvals (id, organization_id, job_id, step_path, title, approver_roles, approver_users,
                                     exclude_initiator, initiated_by, required, form, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6::text[], $7::uuid[], $8, $9, $10, $11, $12)
     ON CONFLICT (job_id, step_path) DO NOTHING
     RETURNING id`,
    [
      a.id,
      a.organizationId,
      a.jobId,
      a.stepPath,
      a.title,
      pgArray(a.approverRoles),
      pgArray(a.approverUsers),
      a.excludeInitiator,
      a.initiatedBy,
      a.required,
      a.form === null ? null : JSON.stringify(a.form),
      a.expiresAt,
    ],
  );
  if (rows[0]) return { id: rows[0].id, created: true };
  const existing = await tx.query<{ id: string }>(
    `SELECT id FROM stepwise.approvals WHERE organization_id = $1 AND job_id = $2 AND step_path = $3`,
    [a.organizationId, a.jobId, a.stepPath],
  );
  return { id: existing.rows[0]!.id, created: false };
}

/**
 * Users who may decide: active, with a listed role or listed by id, and not
 * `excludeUserId` (the run's initiator, when the approval excludes them).
 */
export async function findEligibleUserIds(
  db: Queryable,
  organizationId: string,
  who: { roles: readonly string[]; users: readonly string[]; excludeUserId: string | null },
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM stepwise.users
      WHERE organization_id = $1 AND disabled_at IS NULL
        AND (role = ANY ($2::text[]) OR id = ANY ($3::uuid[]))
        AND id IS DISTINCT FROM $4::uuid
      ORDER BY id`,
    [organizationId, pgArray(who.roles), pgArray(who.users), who.excludeUserId],
  );
  return rows.map((r) => r.id);
}

/** One link row per user (token not derived yet: see approval_links in migration 0017). */
export async function insertApprovalLinks(
  tx: Queryable,
  organizationId: string,
  approvalId: string,
  expiresAt: Date | null,
  links: readonly { userId: string; nonce: Buffer }[],
): Promise<void> {
  if (links.length === 0) return;
  await tx.query(
    `INSERT INTO stepwise.approval_links (approval_id, organization_id, user_id, nonce, expires_at)
     SELECT $1, $2, u.user_id, decode(u.nonce, 'hex'), $5
       FROM unnest($3::uuid[], $4::text[]) AS u (user_id, nonce)
     ON CONFLICT (approval_id, user_id) DO NOTHING`,
    [approvalId, organizationId, pgArray(links.map((l) => l.userId)), pgArray(links.map((l) => l.nonce.toString('hex'))), expiresAt],
  );
}

/** One approval of the organization, or null. */
export async function findApproval(db: Queryable, organizationId: string, approvalId: string): Promise<StoredApproval | null> {
  const { rows } = await db.query<ApprovalRow>(
    `SELECT ${APPROVAL_COLUMNS} FROM ${APPROVAL_FROM} WHERE a.organization_id = $1 AND a.id = $2`,
    [organizationId, approvalId],
  );
  return rows[0] ? toApproval(rows[0]) : null;
}

/**
 * The approval, its row locked until the transaction ends: decisions on one
 * approval are taken one after the other, so two approvers racing for the
 * last place of a quorum, or an approve racing a reject, are counted right.
 */
export async function lockApproval(tx: Queryable, organizationId: string, approvalId: string): Promise<StoredApproval | null> {
  const { rows } = await tx.query<ApprovalRow>(
    `SELECT ${APPROVAL_COLUMNS} FROM ${APPROVAL_FROM} WHERE a.organization_id = $1 AND a.id = $2 FOR UPDATE OF a`,
    [organizationId, approvalId],
  );
  return rows[0] ? toApproval(rows[0]) : null;
}

/** A decision as audited. */
export interface StoredDecision {
  id: string;
  approvalId: string;
  userId: string;
  decision: DecisionKind;
  comment: string | null;
  values: Record<string, unknown> | null;
  via: 'API' | 'LINK';
  apiKeyId: string | null;
  decidedAt: Date;
}

interface DecisionRow {
  id: string;
  approval_id: string;
  user_id: string;
  decision: DecisionKind;
  comment: string | null;
  form_values: Record<string, unknown> | null;
  via: 'API' | 'LINK';
  api_key_id: string | null;
  decided_at: Date;
}

/** An approval's decisions in the order they were made. */
export async function listDecisions(db: Queryable, organizationId: string, approvalId: string): Promise<StoredDecision[]> {
  const { rows } = await db.query<DecisionRow>(
    `SELECT id, approval_id, user_id, decision, comment, form_values, via, api_key_id, decided_at
       FROM stepwise.approval_decisions WHERE organization_id = $1 AND approval_id = $2 ORDER BY seq`,
    [organizationId, approvalId],
  );
  return rows.map((r) => ({
    id: r.id,
    approvalId: r.approval_id,
    userId: r.user_id,
    decision: r.decision,
    comment: r.comment,
    values: r.form_values,
    via: r.via,
    apiKeyId: r.api_key_id,
    decidedAt: r.decided_at,
  }));
}

export interface NewDecision {
  id: string;
  organizationId: string;
  approvalId: string;
  userId: string;
  decision: DecisionKind;
  comment: string | null;
  values: Record<string, unknown> | null;
  via: 'API' | 'LINK';
  apiKeyId: string | null;
}

/**
 * Record a decision (call with the approval locked: its seq is the next one);
 * false when this user has decided this approval already (a user decides once).
 */
export async function insertDecision(tx: Queryable, d: NewDecision): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO stepwise.approval_decisions (id, organization_id, approval_id, seq, user_id, decision, comment, form_values, via, api_key_id)
     SELECT $1::uuid, $2::uuid, $3::uuid, coalesce(max(seq), 0) + 1, $4::uuid, $5::text, $6::text, $7::jsonb, $8::text, $9::uuid
       FROM stepwise.approval_decisions WHERE approval_id = $3::uuid
     ON CONFLICT (approval_id, user_id) DO NOTHING`,
    [d.id, d.organizationId, d.approvalId, d.userId, d.decision, d.comment, d.values === null ? null : JSON.stringify(d.values), d.via, d.apiKeyId],
  );
  return rowCount > 0;
}

/**
 * The approvals an approval has now, by a statement of its own. Call it with
 * the approval locked and after recording one's decision: under READ
 * COMMITTED a statement that waited for the lock sees the locked row as it is
 * now but everything else as of when it started, so lockApproval's
 * approveCount can miss a decision committed while it waited; a new statement
 * sees every decision committed before the lock was granted.
 */
export async function countApproves(tx: Queryable, organizationId: string, approvalId: string): Promise<number> {
  const { rows } = await tx.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM stepwise.approval_decisions WHERE organization_id = $1 AND approval_id = $2 AND decision = 'APPROVE'`,
    [organizationId, approvalId],
  );
  return rows[0]!.n;
}

/** Close a pending approval with its outcome (the decisions reached it). */
export async function closeApproval(tx: Queryable, organizationId: string, approvalId: string, status: 'APPROVED' | 'REJECTED'): Promise<void> {
  await tx.query(
    `UPDATE stepwise.approvals SET status = $3, decided_at = now() WHERE organization_id = $1 AND id = $2 AND status = 'PENDING'`,
    [organizationId, approvalId, status],
  );
}

/** Close a pending approval nobody decided in time; false when it was decided meanwhile. */
export async function expireApproval(tx: Queryable, organizationId: string, approvalId: string, outcome: 'APPROVED' | 'REJECTED'): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE stepwise.approvals SET status = 'EXPIRED', timeout_outcome = $3, decided_at = now()
      WHERE organization_id = $1 AND id = $2 AND status = 'PENDING'`,
    [organizationId, approvalId, outcome],
  );
  return rowCount > 0;
}

export interface ApprovalFilter {
  status: StoredApprovalStatus;
  /** The caller: approvals listing their role or their user id. */
  role: Role;
  userId: string;
  /** Keyset: approvals older than this id. */
  after?: string | undefined;
  limit: number;
}

/**
 * An organization's approvals addressed to a user (their role or their id is
 * listed), newest first. PENDING lists only what they may decide now: not
 * those that exclude them as the run's initiator, not those they decided,
 * not those past their expiry or whose job has ended.
 */
export async function listApprovals(db: Queryable, organizationId: string, f: ApprovalFilter): Promise<{ items: StoredApproval[]; nextAfter: string | null }> {
  const { rows } = await db.query<ApprovalRow>(
    `SELECT ${APPROVAL_COLUMNS} FROM ${APPROVAL_FROM}
      WHERE a.organization_id = $1 AND a.status = $2
        AND ($3::text = ANY (a.approver_roles) OR $4::uuid = ANY (a.approver_users))
        AND ($2 <> 'PENDING' OR (
              NOT coalesce(a.exclude_initiator AND a.initiated_by = $4::uuid, false)
              AND NOT EXISTS (SELECT 1 FROM stepwise.approval_decisions d WHERE d.approval_id = a.id AND d.user_id = $4::uuid)
              AND (a.expires_at IS NULL OR a.expires_at > now())
              AND j.status <> ALL ($5::text[])))
        AND ($6::uuid IS NULL OR a.id < $6::uuid)
      ORDER BY a.id DESC LIMIT $7`,
    [organizationId, f.status, f.role, f.userId, pgArray(TERMINAL_STATUSES), f.after ?? null, f.limit + 1],
  );
  const items = rows.slice(0, f.limit).map(toApproval);
  return { items, nextAfter: rows.length > f.limit ? items[items.length - 1]!.id : null };
}

/** A per-approver link as stored. */
export interface StoredLink {
  approvalId: string;
  organizationId: string;
  userId: string;
  nonce: Buffer;
  keyId: string | null;
  expiresAt: Date | null;
  usedAt: Date | null;
  /** Past expires_at by the database's clock. */
  expired: boolean;
}

interface LinkRow {
  approval_id: string;
  organization_id: string;
  user_id: string;
  nonce: Uint8Array;
  key_id: string | null;
  expires_at: Date | null;
  used_at: Date | null;
  expired: boolean;
}

const LINK_COLUMNS = 'l.approval_id, l.organization_id, l.user_id, l.nonce, l.key_id, l.expires_at, l.used_at, coalesce(l.expires_at <= now(), false) AS expired';

function toLink(r: LinkRow): StoredLink {
  return {
    approvalId: r.approval_id,
    organizationId: r.organization_id,
    userId: r.user_id,
    nonce: Buffer.from(r.nonce),
    keyId: r.key_id,
    expiresAt: r.expires_at,
    usedAt: r.used_at,
    expired: r.expired,
  };
}

/**
 * The link whose token hashes to `tokenHash`, in any organization: the
 * token is the credential, so this lookup is how a link request learns its
 * tenant. `lock` holds the row until the transaction ends (a link is used once).
 */
export async function findLinkByTokenHash(db: Queryable, tokenHash: Buffer, opts: { organizationId?: string; lock?: boolean } = {}): Promise<StoredLink | null> {
  const { rows } = await db.query<LinkRow>(
    `SELECT ${LINK_COLUMNS} FROM stepwise.approval_links l
      WHERE l.token_hash = $1 AND ($2::uuid IS NULL OR l.organization_id = $2::uuid)${opts.lock ? ' FOR UPDATE' : ''}`,
    [tokenHash, opts.organizationId ?? null],
  );
  return rows[0] ? toLink(rows[0]) : null;
}

/** An approval's links with their users' names (for OWNER/ADMIN to send them on). */
export async function listLinks(
  db: Queryable,
  organizationId: string,
  approvalId: string,
): Promise<(StoredLink & { email: string | null; name: string | null })[]> {
  const { rows } = await db.query<LinkRow & { email: string | null; name: string | null }>(
    `SELECT ${LINK_COLUMNS}, u.email, u.name
       FROM stepwise.approval_links l
       LEFT JOIN stepwise.users u ON u.organization_id = l.organization_id AND u.id = l.user_id
      WHERE l.organization_id = $1 AND l.approval_id = $2 ORDER BY l.user_id`,
    [organizationId, approvalId],
  );
  return rows.map((r) => ({ ...toLink(r), email: r.email, name: r.name }));
}

/** Record the hashes of tokens derived for the first time (rows that have one keep it). */
export async function setLinkTokenHashes(
  tx: Queryable,
  organizationId: string,
  approvalId: string,
  hashes: readonly { userId: string; tokenHash: Buffer; keyId: string }[],
): Promise<void> {
  if (hashes.length === 0) return;
  await tx.query(
    `UPDATE stepwise.approval_links l SET token_hash = decode(u.token_hash, 'hex'), key_id = u.key_id
       FROM unnest($3::uuid[], $4::text[], $5::text[]) AS u (user_id, token_hash, key_id)
      WHERE l.organization_id = $1 AND l.approval_id = $2 AND l.user_id = u.user_id AND l.token_hash IS NULL`,
    [
      organizationId,
      approvalId,
      pgArray(hashes.map((h) => h.userId)),
      pgArray(hashes.map((h) => h.tokenHash.toString('hex'))),
      pgArray(hashes.map((h) => h.keyId)),
    ],
  );
}

/** Spend a link; false when it was used already. */
export async function markLinkUsed(tx: Queryable, organizationId: string, approvalId: string, userId: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE stepwise.approval_links SET used_at = now()
      WHERE organization_id = $1 AND approval_id = $2 AND user_id = $3 AND used_at IS NULL`,
    [organizationId, approvalId, userId],
  );
  return rowCount > 0;
}
