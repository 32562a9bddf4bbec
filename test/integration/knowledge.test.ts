import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { knowledgeService } from '../../src/engine/knowledge.js';
import { findJob, listStream, type Role } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/**
 * Knowledge collections end to end: documents through the API, ranking,
 * retrieve → decision → markUsed in a running workflow, the job's
 * retrieval record, its idempotence per (job, step path), and analytics.
 */
let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let orgId: string;
let as: Record<Role, ApiClient>;
let other: ApiClient;
let n = 0;

/** Payer rules: the corpus every ranking assertion below is about. */
const RULES: Json[] = [
  {
    externalId: 'aetna-mri-pa',
    type: 'payer_rule',
    title: 'Aetna: prior authorization for outpatient MRI',
    text: 'Outpatient MRI of the spine, brain or joints needs prior authorization from Aetna before the scan.',
    condition: 'payer is Aetna and procedure is MRI',
    action: 'Submit a prior authorization request with clinical notes',
    tags: ['aetna', 'imaging'],
    metadata: { source: 'aetna-2026-01' },
  },
  {
    externalId: 'aetna-ct-pa',
    type: 'payer_rule',
    title: 'Aetna: CT scans without contrast',
    text: 'CT scans without contrast do not need authorization; with contrast, prior authorization applies.',
    condition: 'payer is Aetna and procedure is CT',
    action: 'Check contrast before scheduling',
    tags: ['aetna', 'imaging'],
  },
  {
    externalId: 'aetna-timely-filing',
    type: 'payer_rule',
    title: 'Aetna: timely filing limit',
    text: 'Claims must reach Aetna within 90 days of the date of service, or they are denied.',
    tags: ['aetna', 'claims'],
  },
  {
    externalId: 'cigna-mri-pa',
    type: 'payer_rule',
    title: 'Cigna: advanced imaging authorization',
    text: 'Cigna reviews MRI and PET through its imaging benefit manager; authorization is required.',
    tags: ['cigna', 'imaging'],
  },
  {
    externalId: 'modifier-25',
    type: 'coding_rule',
    title: 'Modifier 25 on evaluation and management',
    text: 'Append modifier 25 when a significant, separately identifiable E/M service is performed on the day of a procedure.',
    tags: ['coding'],
  },
  {
    externalId: 'dental-xray',
    type: 'payer_rule',
    title: 'Dental radiographs frequency',
    text: 'Bitewing radiographs are covered once per calendar year.',
    tags: ['dental'],
  },
];

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  orgId = (await seedOrg(t.db, 'Back office')).organizationId;
  const users = await seedRoleKeys(t.db, orgId);
  as = { VIEWER: client(app, users.VIEWER.key), MEMBER: client(app, users.MEMBER.key), ADMIN: client(app, users.ADMIN.key), OWNER: client(app, users.OWNER.key) };
  other = client(app, (await seedOrg(t.db, 'Other tenant')).key);
  worker = startWorker(t.db, { pollIntervalMs: 50 });
  const res = await as.ADMIN.post('/v1/knowledge/payer-rules/documents', { documents: RULES });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body).toMatchObject({ created: RULES.length, updated: 0 });
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

async function startRun(steps: Json[], input: Json = {}): Promise<{ jobId: string; workflowId: string }> {
  const wf = await as.ADMIN.post('/v1/workflows', { name: `triage-${++n}`, definition: { steps } });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const run = await as.MEMBER.post(`/v1/workflows/${wf.body.id}/runs`, { input });
  expect(run.status, JSON.stringify(run.body)).toBe(202);
  return { jobId: run.body.jobId, workflowId: wf.body.id };
}

async function runToEnd(steps: Json[], input: Json = {}): Promise<{ jobId: string; workflowId: string; result: Json }> {
  const started = await startRun(steps, input);
  const job = await waitForJob(t.db, orgId, started.jobId);
  expect(job.status, `${job.errorCode}: ${job.errorMessage}`).toBe("COMPLETED");
  return { ...started, result: job.result };
}

describe('documents', () => {
  it('upserts by externalId, one or a batch; lists in pages; reads, deletes; counts collections', async () => {
    const changed = await as.ADMIN.post('/v1/knowledge/payer-rules/documents', { ...RULES[5], title: 'Dental bitewing radiographs frequency' });
    expect(changed.body).toMatchObject({ created: 0, updated: 1, items: [{ externalId: 'dental-xray', created: false }] });
    const doc = await as.VIEWER.get('/v1/knowledge/payer-rules/documents/dental-xray');
    expect(doc.body).toMatchObject({ externalId: 'dental-xray', title: 'Dental bitewing radiographs frequency', tags: ['dental'], metadata: {}, condition: null });

    const first = await as.VIEWER.get('/v1/knowledge/payer-rules/documents?limit=4');
    expect(first.body.items.map((d: Json) => d.externalId)).toEqual(['aetna-ct-pa', 'aetna-mri-pa', 'aetna-timely-filing', 'cigna-mri-pa']);
    const second = await as.VIEWER.get(`/v1/knowledge/payer-rules/documents?limit=4&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((d: Json) => d.externalId)).toEqual(['dental-xray', 'modifier-25']);
    expect(second.body.nextCursor).toBeNull();

    await as.ADMIN.post('/v1/knowledge/scratch/documents', { externalId: 'x', title: 'Scratch', text: 'to be deleted' });
    expect((await as.VIEWER.get('/v1/knowledge')).body.items).toEqual([
      { collection: 'payer-rules', documents: RULES.length, updatedAt: expect.any(String) },
      { collection: 'scratch', documents: 1, updatedAt: expect.any(String) },
    ]);
    expect((await as.ADMIN.del('/v1/knowledge/scratch/documents/x')).status).toBe(204);
    expectError(await as.ADMIN.del('/v1/knowledge/scratch/documents/x'), 404, 'NOT_FOUND');
    expectError(await as.VIEWER.get('/v1/knowledge/scratch/documents/x'), 404, 'NOT_FOUND');
  });

  it('refuses what breaks a limit with a 400 naming the field, and writes nothing of the batch', async () => {
    const long = 'x'.repeat(501);
    const batch = [RULES[0], { ...RULES[1], externalId: 'new-1' }, { ...RULES[2], externalId: 'new-2', title: long }];
    expect(expectError(await as.ADMIN.post('/v1/knowledge/payer-rules/documents', { documents: batch }), 400, 'VALIDATION').details.path).toBe(
      '/body/documents/2/title',
    );
    expect((await as.VIEWER.get('/v1/knowledge/payer-rules/documents/new-1')).status).toBe(404);
    const cases: [Json, string][] = [
      [{ externalId: 'a', title: 't' }, '/body/text'],
      [{ externalId: 'a', title: 't', text: 'x'.repeat(20_001) }, '/body/text'],
      [{ externalId: 'a', title: 't', text: 'x', tags: ['has space'] }, '/body/tags/0'],
      [{ externalId: 'a', title: 't', text: 'x', metadata: { blob: 'y'.repeat(17_000) } }, '/body/metadata'],
      [{ externalId: 'a'.repeat(201), title: 't', text: 'x' }, '/body/externalId'],
      [{ documents: [{ externalId: 'a', title: 't', text: 'x' }, { externalId: 'a', title: 'u', text: 'y' }] }, '/body/documents/1/externalId'],
      [{ documents: Array.from({ length: 501 }, (_, i) => ({ externalId: `d${i}`, title: 't', text: 'x' })) }, '/body/documents'],
      [{ documents: [{ externalId: 'a', title: 't', text: 'x' }], title: 'stray' }, '/body/title'],
    ];
    for (const [body, path] of cases) {
      const res = await as.ADMIN.post('/v1/knowledge/payer-rules/documents', body);
      expect(expectError(res, 400, 'VALIDATION').details.path, JSON.stringify(body).slice(0, 80)).toBe(path);
    }
    expect(expectError(await as.ADMIN.post('/v1/knowledge/Payer Rules/documents', RULES[0]), 400, 'VALIDATION').details.path).toBe('/params/collection');
    expectError(await as.MEMBER.post('/v1/knowledge/payer-rules/documents', RULES[0]), 403, 'FORBIDDEN');
  });
});

describe('search', () => {
  it('ranks the most relevant rule first, scores descending, ranks 1..k', async () => {
    const res = await as.VIEWER.get('/v1/knowledge/payer-rules/search?q=aetna%20prior%20authorization%20MRI&limit=10');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const items = res.body.items as Json[];
    expect(items[0].externalId).toBe('aetna-mri-pa');
    // Only documents holding every word match (websearch_to_tsquery ANDs them).
    expect(items.map((d) => d.externalId)).toEqual(['aetna-mri-pa']);
    const broad = (await as.VIEWER.get('/v1/knowledge/payer-rules/search?q=authorization&limit=10')).body.items as Json[];
    expect(broad.map((d) => d.externalId).sort()).toEqual(['aetna-ct-pa', 'aetna-mri-pa', 'cigna-mri-pa']);
    // "authorization" in the title (weight A) of the Aetna MRI rule outranks it in the text of the others.
    expect(broad[0].externalId).toBe('aetna-mri-pa');
    expect(broad.map((d) => d.rank)).toEqual([1, 2, 3]);
    for (let i = 1; i < broad.length; i++) expect(broad[i].score).toBeLessThanOrEqual(broad[i - 1].score);
    expect(broad.every((d) => d.score > 0 && d.score < 1)).toBe(true);
  });

  it('filters by tags (all of them) and bounds the limit', async () => {
    const imaging = (await as.VIEWER.get('/v1/knowledge/payer-rules/search?q=authorization%20or%20MRI&tags=imaging,cigna')).body.items as Json[];
    expect(imaging.map((d) => d.externalId)).toEqual(['cigna-mri-pa']);
    const two = (await as.VIEWER.get('/v1/knowledge/payer-rules/search?q=aetna&limit=2')).body.items as Json[];
    expect(two).toHaveLength(2);
    expect(expectError(await as.VIEWER.get('/v1/knowledge/payer-rules/search?q=aetna&limit=51'), 400, 'VALIDATION').details.path).toBe('/querystring/limit');
    expect(expectError(await as.VIEWER.get('/v1/knowledge/payer-rules/search?q=aetna&tags=a%20b'), 400, 'VALIDATION').details.path).toBe('/querystring/tags');
  });

  it('match=any finds documents with any of the words, those with more of them first; match=all none', async () => {
    const q = encodeURIComponent('aetna prior authorization MRI bitewing');
    expect((await as.VIEWER.get(`/v1/knowledge/payer-rules/search?q=${q}`)).body.items).toEqual([]);
    const any = (await as.VIEWER.get(`/v1/knowledge/payer-rules/search?q=${q}&match=any&limit=10`)).body.items as Json[];
    const ids = any.map((d) => d.externalId);
    // aetna-mri-pa holds four of the words, dental-xray one of them (bitewing).
    expect(ids[0]).toBe('aetna-mri-pa');
    expect(ids).toContain('dental-xray');
    expect(ids).not.toContain('modifier-25');
    expect(ids.indexOf('dental-xray')).toBeGreaterThan(0);
    expect(any.map((d) => d.rank)).toEqual(any.map((_, i) => i + 1));
    for (let i = 1; i < any.length; i++) expect(any[i].score).toBeLessThanOrEqual(any[i - 1].score);
    expect(expectError(await as.VIEWER.get(`/v1/knowledge/payer-rules/search?q=${q}&match=some`), 400, 'VALIDATION').details.path).toBe('/querystring/match');
  });

  it('another organization sees none of it', async () => {
    expect((await other.get('/v1/knowledge')).body.items).toEqual([]);
    expect((await other.get('/v1/knowledge/payer-rules/documents')).body.items).toEqual([]);
    expectError(await other.get('/v1/knowledge/payer-rules/documents/aetna-mri-pa'), 404, 'NOT_FOUND');
    expect((await other.get('/v1/knowledge/payer-rules/search?q=aetna')).body.items).toEqual([]);
    expectError(await other.del('/v1/knowledge/payer-rules/documents/aetna-mri-pa'), 404, 'NOT_FOUND');
  });
});

const RETRIEVE = { id: 'rules', type: 'retrieve', collection: 'payer-rules', query: '{{ input.payer }} {{ input.procedure }}', topK: 3 };
// The llm-free decision: the imaging rules among those retrieved are the ones the decision rests on.
const DECIDE = { id: 'decide', type: 'transform', expression: '{ "rules": [steps.rules.documents["imaging" in tags].externalId] }' };
const MARK = { id: 'mark', type: 'markUsed', documents: '{{ steps.decide.rules }}', retrieval: 'rules', reason: 'decision for {{ input.procedure }}' };

describe('a workflow: retrieve → decision → markUsed', () => {
  let run: { jobId: string; workflowId: string; result: Json };

  beforeAll(async () => {
    run = await runToEnd([RETRIEVE, DECIDE, { ...MARK, documents: ['{{ steps.decide.rules }}', 'no-such-rule'] }], { payer: 'aetna', procedure: 'MRI' });
  });

  it('records the retrieval and the used marks, shown by GET /v1/jobs/:id/retrievals', async () => {
    expect(run.result).toEqual({ marked: 1, unknown: ['no-such-rule'] });
    const res = await as.VIEWER.get(`/v1/jobs/${run.jobId}/retrievals`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.archived).toBe(false);
    const [r] = res.body.items as Json[];
    expect(r).toMatchObject({ stepPath: 'rules', collection: 'payer-rules', query: 'aetna MRI', count: 1 });
    expect(r.documents).toEqual([
      {
        rank: 1,
        score: expect.any(Number),
        documentId: expect.any(String),
        externalId: 'aetna-mri-pa',
        type: 'payer_rule',
        title: 'Aetna: prior authorization for outpatient MRI',
        deleted: false,
        used: true,
        usedAt: expect.any(String),
        usedByPath: 'mark',
        usedReason: 'decision for MRI',
      },
    ]);
    const job = (await findJob(t.db, orgId, run.jobId))!;
    const kinds = (await listStream(t.db, orgId, job, { limit: 200 })).map((s) => s.kind);
    expect(kinds.filter((k) => k === 'RETRIEVED' || k === 'DOCUMENTS_USED')).toEqual(['RETRIEVED', 'DOCUMENTS_USED']);
    expectError(await other.get(`/v1/jobs/${run.jobId}/retrievals`), 404, 'NOT_FOUND');
  });

  it('finds the retrieve step from inside a loop, and unused documents stay unmarked', async () => {
    const loop = {
      id: 'each',
      type: 'forEach',
      items: 'steps.rules.documents',
      steps: [{ id: 'mark', type: 'markUsed', documents: '{{ item.externalId = "aetna-ct-pa" ? item.externalId : null }}', retrieval: 'rules' }],
    };
    const { jobId } = await runToEnd([{ ...RETRIEVE, query: 'aetna authorization' }, loop], {});
    const [r] = (await as.VIEWER.get(`/v1/jobs/${jobId}/retrievals`)).body.items as Json[];
    const marks = Object.fromEntries(r.documents.map((d: Json) => [d.externalId, d.usedByPath]));
    expect(marks).toEqual({ 'aetna-mri-pa': null, 'aetna-ct-pa': expect.stringMatching(/^each\[\d\]\.mark$/) });
  });

  it('fails a markUsed naming a retrieve step the job never ran with RETRIEVAL_NOT_FOUND', async () => {
    const { jobId } = await startRun([RETRIEVE, { ...MARK, retrieval: 'elsewhere' }], { payer: 'aetna', procedure: 'MRI' });
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('RETRIEVAL_NOT_FOUND');
  });
});

describe('a retrieve step with match: any', () => {
  it('ranks by the words of a whole letter, where requiring every word finds nothing', async () => {
    const letter = 'Dear team, please check whether Aetna needs prior authorization for the MRI we scheduled next week. Thanks!';
    const step = (match?: string) => ({ id: 'rules', type: 'retrieve', collection: 'payer-rules', query: '{{ input.letter }}', topK: 3, ...(match ? { match } : {}) });
    const any = await runToEnd([step('any')], { letter });
    const found = (any.result as Json).documents as Json[];
    expect(found[0].externalId).toBe('aetna-mri-pa');
    expect(found.map((d) => d.rank)).toEqual(found.map((_, i) => i + 1));
    const all = await runToEnd([step()], { letter });
    expect((all.result as Json).count).toBe(0);
    const bad = await as.ADMIN.post('/v1/workflows', { name: 'bad match', definition: { steps: [step('some')] } });
    expect(expectError(bad, 400, 'VALIDATION').details.path).toBe('/definition/steps/0/match');
  });
});

describe('idempotence per (job, step path)', () => {
  it('a second retrieve of the same job and path returns the recorded documents, even after the collection changed', async () => {
    const { jobId, workflowId } = await runToEnd([{ id: 'noop', type: 'noop' }]);
    const knowledge = knowledgeService(t.db);
    const request = { organizationId: orgId, jobId, workflowId, stepPath: 'rules', collection: 'payer-rules', query: 'benefit manager', topK: 5, tags: [] };
    const first = await knowledge.retrieve(request);
    expect(first.created).toBe(true);
    expect(first.documents.map((d) => d.externalId)).toEqual(['cigna-mri-pa']);
    // A better match arrives, and the recorded one stops matching at all.
    await as.ADMIN.post('/v1/knowledge/payer-rules/documents', {
      documents: [
        { externalId: 'uhc-imaging-pa', title: 'UHC benefit manager', text: 'The benefit manager reviews imaging.', tags: ['uhc'] },
        { ...RULES[3], text: 'Cigna reviews MRI and PET scans; authorization is required.', title: 'Cigna: advanced scans' },
      ],
    });
    const again = await knowledge.retrieve(request);
    expect(again).toMatchObject({ id: first.id, created: false, query: 'benefit manager' });
    expect(again.documents.map((d) => [d.externalId, d.rank, d.score])).toEqual(first.documents.map((d) => [d.externalId, d.rank, d.score]));
    // A fresh path ranks the collection as it is now.
    const fresh = await knowledge.retrieve({ ...request, stepPath: 'rules2' });
    expect(fresh.documents.map((d) => d.externalId)).toEqual(['uhc-imaging-pa']);
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM stepwise.retrieval_documents rd JOIN stepwise.retrievals r ON r.id = rd.retrieval_id WHERE r.job_id = $1`,
      [jobId],
    );
    expect(rows[0]!.n).toBe(2);

    // The first mark wins; marking again changes nothing and counts nothing twice.
    const mark = { organizationId: orgId, jobId, usedByPath: 'a', retrievalPath: 'rules', documents: ['cigna-mri-pa', first.documents[0]!.id], reason: 'first' };
    expect(await knowledge.markUsed(mark)).toMatchObject({ marked: 1, unknown: [] });
    expect(await knowledge.markUsed({ ...mark, usedByPath: 'b', reason: 'second' })).toMatchObject({ marked: 1, unknown: [] });
    const [r] = (await as.VIEWER.get(`/v1/jobs/${jobId}/retrievals`)).body.items as Json[];
    expect(r.documents[0]).toMatchObject({ externalId: 'cigna-mri-pa', usedByPath: 'a', usedReason: 'first', title: 'Cigna: advanced scans' });
    const usage = await t.db.query<{ retrieved: number; used: number }>(
      `SELECT retrieved, used FROM stepwise.knowledge_usage_daily WHERE organization_id = $1 AND workflow_id = $2 AND document_id = $3`,
      [orgId, workflowId, first.documents[0]!.id],
    );
    expect(usage.rows).toEqual([{ retrieved: 1, used: 1 }]);
  });
});

describe('analytics', () => {
  it('counts per document how often it was retrieved and used, in total and per workflow', async () => {
    const steps = [RETRIEVE, DECIDE, MARK];
    const a = await runToEnd(steps, { payer: 'aetna', procedure: 'CT' });
    await runToEnd(steps, { payer: 'aetna', procedure: 'CT' }); // another workflow (each run defines one)
    const before = await as.VIEWER.get(`/v1/knowledge/payer-rules/analytics?workflowId=${a.workflowId}`);
    expect(before.status, JSON.stringify(before.body)).toBe(200);
    // "aetna CT" matches the CT rule only: retrieved once and used once in this workflow.
    expect(before.body.items).toEqual([
      { documentId: expect.any(String), externalId: 'aetna-ct-pa', title: 'Aetna: CT scans without contrast', retrieved: 1, used: 1, workflows: [{ workflowId: a.workflowId, workflowName: expect.any(String), retrieved: 1, used: 1 }] },
    ]);
    const all = (await as.VIEWER.get('/v1/knowledge/payer-rules/analytics')).body.items as Json[];
    const ct = all.find((d) => d.externalId === 'aetna-ct-pa');
    expect(ct.workflows.length).toBeGreaterThanOrEqual(2);
    expect(ct.retrieved).toBe(ct.workflows.reduce((s: number, w: Json) => s + w.retrieved, 0));
    expect(ct.used).toBe(ct.workflows.reduce((s: number, w: Json) => s + w.used, 0));
    const past = await as.VIEWER.get('/v1/knowledge/payer-rules/analytics?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z');
    expect(past.body.items).toEqual([]);
    expect(expectError(await as.VIEWER.get('/v1/knowledge/payer-rules/analytics?from=2020-01-01T00:00:00Z&to=2022-01-01T00:00:00Z'), 400, 'VALIDATION').details.path).toBe(
      '/querystring/from',
    );
    expect((await other.get('/v1/knowledge/payer-rules/analytics')).body.items).toEqual([]);
  });
});
