import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../src/util/ids.js';
import type { Worker } from '../../src/engine/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/**
 * Every API read that returns PHI writes phi_audit_log in the same request
 * (HIPAA's access accounting), and no row younger than six years can be removed.
 */
let t: TestDb;
let app: FastifyInstance;
let a: ApiClient;
let b: ApiClient;
let orgA: string;
let ownerA: string;
let worker: Worker;
let phiJob: string;
let plainJob: string;
let phiWorkflow: string;

const UA = 'Mozilla/5.0 (X11; "quoted", with comma)\n=cmd|calc';

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const sa = await seedOrg(t.db, 'PHI A');
  orgA = sa.organizationId;
  ownerA = sa.ownerId;
  a = client(app, sa.key);
  b = client(app, (await seedOrg(t.db, 'PHI B')).key);
  worker = startWorker(t.db);
  const wf = await a.post('/v1/workflows', {
    name: 'eligibility',
    definition: {
      phi: ['input.patientName', 'input.memberId', 'input.absent', 'result'],
      steps: [{ id: 'check', type: 'transform', expression: '{ "eligible": true, "member": input.memberId }' }],
    },
  });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  phiWorkflow = wf.body.id;
  const plain = await a.post('/v1/workflows', { name: 'plain', definition: { steps: [{ id: 'n', type: 'noop' }] } });
  phiJob = (await a.post(`/v1/workflows/${phiWorkflow}/runs`, { input: { patientName: 'Jane Roe', memberId: 'M-1234' } })).body.jobId;
  plainJob = (await a.post(`/v1/workflows/${plain.body.id}/runs`, { input: { x: 1 } })).body.jobId;
  await waitForJob(t.db, orgA, phiJob);
  await waitForJob(t.db, orgA, plainJob);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

async function auditRows(jobId: string): Promise<Json[]> {
  const { rows } = await t.db.query(
    `SELECT actor, api_key_id, resource_type, resource_id, fields, ip, user_agent FROM stepwise.phi_audit_log WHERE job_id = $1 ORDER BY id`,
    [jobId],
  );
  return rows;
}

describe('PHI paths in a definition', () => {
  it('must be input or result paths', async () => {
    const bad = await a.post('/v1/workflows', { name: 'bad', definition: { phi: ['secrets.x'], steps: [{ id: 'n', type: 'noop' }] } });
    expect(expectError(bad, 400, 'VALIDATION').details.path).toBe('/definition/phi/0');
  });
});

describe('reads that return PHI are audited in the same request', () => {
  it('GET /v1/jobs/:id writes one row naming the PHI fields present, the key, IP and user agent', async () => {
    const before = (await auditRows(phiJob)).length;
    const res = await a.get(`/v1/jobs/${phiJob}`, { 'user-agent': 'audit-test/1.0' });
    expect(res.status).toBe(200);
    const rows = await auditRows(phiJob);
    expect(rows).toHaveLength(before + 1);
    const row = rows[rows.length - 1];
    expect(row).toMatchObject({ resource_type: 'JOB', resource_id: phiJob, user_agent: 'audit-test/1.0' });
    expect(row.fields).toEqual(['input.patientName', 'input.memberId', 'result']);
    expect(row.actor).toBe(`user:${ownerA}`);
    expect(row.api_key_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(row.ip).toBeTruthy();
  });

  it('a job of a workflow without PHI paths is not audited', async () => {
    expect((await a.get(`/v1/jobs/${plainJob}`)).status).toBe(200);
    expect(await auditRows(plainJob)).toEqual([]);
  });

  it('a list page writes one row per PHI job it returns, none for the others', async () => {
    const before = (await auditRows(phiJob)).length;
    const res = await a.get('/v1/jobs?limit=50');
    expect(res.body.items.map((j: Json) => j.id).sort()).toEqual([phiJob, plainJob].sort());
    expect(await auditRows(phiJob)).toHaveLength(before + 1);
    expect(await auditRows(plainJob)).toEqual([]);
  });

  it('a stream read of a PHI workflow’s job is audited (STREAM); an empty page is not', async () => {
    const res = await a.get(`/v1/jobs/${phiJob}/stream`);
    expect(res.body.items.length).toBeGreaterThan(0);
    const rows = await auditRows(phiJob);
    expect(rows.filter((r) => r.resource_type === 'STREAM')).toHaveLength(1);
    const last = res.body.nextAfterSeq;
    await a.get(`/v1/jobs/${phiJob}/stream?afterSeq=${last}`);
    expect((await auditRows(phiJob)).filter((r) => r.resource_type === 'STREAM')).toHaveLength(1);
  });

  it('another tenant’s refused read (404) writes nothing', async () => {
    const before = (await auditRows(phiJob)).length;
    expectError(await b.get(`/v1/jobs/${phiJob}`), 404, 'NOT_FOUND');
    expect(await auditRows(phiJob)).toHaveLength(before);
  });
});

describe('GET /v1/audit/phi', () => {
  it('filters by job, actor and time, pages by cursor, and exports escaped CSV', async () => {
    await a.get(`/v1/jobs/${phiJob}`, { 'user-agent': UA });
    const all = await a.get(`/v1/audit/phi?jobId=${phiJob}`);
    expect(all.status).toBe(200);
    const n = all.body.items.length;
    expect(n).toBeGreaterThanOrEqual(4);
    expect(all.body.items[0].userAgent).toBe(UA); // newest first
    const actor = all.body.items[0].actor;
    expect((await a.get(`/v1/audit/phi?actor=${encodeURIComponent(actor)}`)).body.items).toHaveLength(n);
    expect((await a.get(`/v1/audit/phi?actor=key:nobody`)).body.items).toEqual([]);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await a.get(`/v1/audit/phi?from=${encodeURIComponent(future)}`)).body.items).toEqual([]);
    expect((await a.get(`/v1/audit/phi?to=${encodeURIComponent(future)}&jobId=${phiJob}`)).body.items).toHaveLength(n);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Json = await a.get(`/v1/audit/phi?jobId=${phiJob}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.body.items.map((e: Json) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.body.items.map((e: Json) => e.id));

    const csv = await a.get(`/v1/audit/phi?jobId=${phiJob}&format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const text = String(csv.body);
    expect(text.startsWith('id,at,actor,api_key_id,resource_type,resource_id,job_id,workflow_id,fields,ip,user_agent\r\n')).toBe(true);
    // RFC 4180: quotes doubled, the field quoted because of the comma, quote and newline; formula prefix neutralised.
    expect(text).toContain(`"Mozilla/5.0 (X11; ""quoted"", with comma)\n=cmd|calc"`);
    expect(text).toContain('input.patientName;input.memberId;result');
    expect(csv.headers['x-next-cursor']).toBe('');
  });

  it('refuses bad filters naming the field, and shows another tenant nothing', async () => {
    expectError(await a.get('/v1/audit/phi?jobId=nope'), 400, 'VALIDATION');
    expectError(await a.get('/v1/audit/phi?from=yesterday'), 400, 'VALIDATION');
    expectError(await a.get('/v1/audit/phi?format=xml'), 400, 'VALIDATION');
    const inverted = expectError(await a.get('/v1/audit/phi?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z'), 400, 'VALIDATION');
    expect(inverted.details.path).toBe('/querystring/to');
    expect((await b.get(`/v1/audit/phi?jobId=${phiJob}`)).body.items).toEqual([]);
  });
});

describe('six-year retention', () => {
  it('refuses deleting, changing or truncating rows younger than six years', async () => {
    const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.phi_audit_log');
    expect(rows[0]!.n).toBeGreaterThan(0);
    await expect(t.db.query('DELETE FROM stepwise.phi_audit_log')).rejects.toThrow(/six years/);
    await expect(t.db.query('DELETE FROM stepwise.phi_audit_log_default')).rejects.toThrow(/six years/);
    await expect(t.db.query(`UPDATE stepwise.phi_audit_log SET actor = 'someone else'`)).rejects.toThrow(/immutable/);
    await expect(t.db.query('TRUNCATE stepwise.phi_audit_log')).rejects.toThrow(/truncated/);
    const after = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.phi_audit_log');
    expect(after.rows[0]!.n).toBe(rows[0]!.n);
  });

  it('allows deleting a row once it is older than six years', async () => {
    const id = uuidv7();
    await t.db.query(
      `INSERT INTO stepwise.phi_audit_log (id, organization_id, at, actor, resource_type, resource_id, fields)
       VALUES ($1, $2, now() - interval '6 years 1 day', 'key:old', 'JOB', $1, ARRAY['result'])`,
      [id, orgA],
    );
    const del = await t.db.query('DELETE FROM stepwise.phi_audit_log WHERE id = $1', [id]);
    expect(del.rowCount).toBe(1);
  });
});

describe('month partitions', () => {
  it('are created ahead, carry the retention guards, and a month with rows in the default partition is left there', async () => {
    const { ensurePhiAuditPartitions } = await import('../../src/db/index.js');
    // This month already has rows in the default partition (the template made no PHI partitions): it is skipped.
    const created = await ensurePhiAuditPartitions(t.db);
    const now = new Date();
    const thisMonth = `phi_audit_log_${now.getUTCFullYear()}_${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    expect(created).not.toContain(thisMonth);
    expect(created.length).toBeGreaterThanOrEqual(3);
    expect(await ensurePhiAuditPartitions(t.db)).toEqual([]); // idempotent
    // A row for a future month lands in its partition, and is as undeletable there.
    const future = created[created.length - 1]!;
    const [, y, m] = /_(\d{4})_(\d{2})$/.exec(future)!;
    const at = new Date(Date.UTC(Number(y), Number(m) - 1, 15)).toISOString();
    const id = uuidv7();
    await t.db.query(
      `INSERT INTO stepwise.phi_audit_log (id, organization_id, at, actor, resource_type, resource_id, fields)
       VALUES ($1, $2, $3, 'key:x', 'JOB', $1, ARRAY['result'])`,
      [id, orgA, at],
    );
    const where = await t.db.query<{ rel: string }>('SELECT tableoid::regclass::text AS rel FROM stepwise.phi_audit_log WHERE id = $1', [id]);
    expect(where.rows[0]!.rel).toBe(`stepwise.${future}`);
    await expect(t.db.query(`DELETE FROM stepwise.${future}`)).rejects.toThrow(/six years/);
    await expect(t.db.query(`TRUNCATE stepwise.${future}`)).rejects.toThrow(/truncated/);
  });
});
