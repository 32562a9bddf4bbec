import { migrate, pgJsonArray, PostgresDb, type Queryable } from '../src/db/index.js';
import { knowledgeService } from '../src/engine/knowledge.js';
import type { Retrieval } from '../src/engine/services.js';
import { createOrganization, upsertDocuments } from '../src/store/index.js';
import { uuidv7 } from '../src/util/ids.js';
import { check, emit, log, round, withScratchDatabase, type BenchOptions } from './lib.js';

/**
 * `bench retrieval-bytes`: what keeping a run's retrieval context costs on
 * disk. N jobs each make one retrieval of 20 documents from a collection of
 * 200 payer rules (the retrieve step's own statement) and mark 3 of them
 * used; then, after VACUUM, the bytes of the normalised record (retrievals
 * + retrieval_documents with their indexes and TOAST) beside the same
 * context kept as one jsonb column per run, the way the old design did: the
 * documents inlined (`json-documents`), and, for a like-for-like figure, only
 * the fields the rows hold (`json-references`: ids, ranks, scores, marks).
 * Options: --jobs N (default 20,000; 2,000 is enough for stable figures).
 */

const DOCUMENTS = 200;
const PER_RETRIEVAL = 20;
const USED_PER_RETRIEVAL = 3;
/** Retrievals in flight at once (the pool has 4 connections). */
const PARALLEL = 4;

const PAYERS = ['Aetna', 'Cigna', 'UnitedHealthcare', 'Humana', 'Anthem', 'Kaiser', 'Centene', 'Molina'];
const SERVICES = ['MRI', 'CT', 'PET', 'physical therapy', 'home health', 'DME', 'sleep study', 'genetic testing', 'infusion', 'ambulance'];

/**
 * Words for each rule's own clause. Without it every rule would be the same
 * sentences with names swapped, and TOAST's compression of the JSON-blob
 * baseline (pglz) reached 6×, far past what real rule text gives; with a
 * clause of 60 words drawn from these, each rule differs as real ones do.
 */
const VOCABULARY = (
  'member subscriber dependent provider facility claim encounter referral authorization precertification notification ' +
  'diagnosis procedure modifier units revenue code inpatient outpatient observation emergency elective urgent routine ' +
  'network out-of-network tier formulary exception appeal reconsideration grievance denial adjustment remittance ' +
  'coordination benefits primary secondary tertiary deductible coinsurance copay maximum accumulator calendar plan year ' +
  'documentation medical necessity criteria guideline policy bulletin effective terminated retroactive submitted received ' +
  'attach upload fax portal phone within business days hours of after before unless except when only if each per visit ' +
  'session month quarter limit frequency duplicate bundled unbundled global period surgeon assistant anesthesia radiology ' +
  'laboratory pathology pharmacy injection infusion implant device rental purchase repair replacement supplier ordering ' +
  'rendering billing taxonomy credentialing contract amendment fee schedule allowed amount'
).split(' ');

/** A deterministic pseudo-random sequence (the same corpus and queries every run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A payer rule of ~1 KB: the size of the rules the back office keeps. */
function rule(i: number, rnd: () => number) {
  const payer = PAYERS[i % PAYERS.length]!;
  const service = SERVICES[Math.floor(rnd() * SERVICES.length)]!;
  const days = 30 + Math.floor(rnd() * 90);
  return {
    id: uuidv7(),
    externalId: `${payer.toLowerCase()}-${i}`,
    type: 'payer_rule',
    title: `${payer}: ${service} claim requirements (rule ${i})`,
    text:
      `${payer} requires prior authorization for ${service} before the date of service. A claim submitted without an ` +
      `authorization number is denied with CARC 197. Retro-authorization is accepted within ${days} days when the ` +
      `service was urgent; attach the clinical notes and the ordering physician's NPI. Claims must be filed within ` +
      `${days + 60} days; corrected claims within ${days} days of the original remittance. ` +
      Array.from({ length: 60 }, () => VOCABULARY[Math.floor(rnd() * VOCABULARY.length)]!).join(' ') +
      '.',
    condition: `payer is ${payer} and service is ${service}`,
    action: `request authorization through the ${payer} portal and record the number on the claim`,
    tags: [payer.toLowerCase(), service.replace(/\s+/g, '-').toLowerCase(), 'claims'],
    metadata: { source: `${payer.toLowerCase()}-provider-manual-2026`, section: `${1 + (i % 12)}.${1 + (i % 7)}` },
  };
}

interface Sizes {
  total: number;
  heap: number;
  indexes: number;
}

async function sizes(db: Queryable, tables: readonly string[]): Promise<Sizes> {
  const { rows } = await db.query<{ total: string; heap: string; indexes: string }>(
    `SELECT sum(pg_total_relation_size(t::regclass))::bigint::text AS total,
            sum(pg_relation_size(t::regclass))::bigint::text AS heap,
            sum(pg_indexes_size(t::regclass))::bigint::text AS indexes
       FROM unnest($1::text[]) AS t`,
    [tables],
  );
  const r = rows[0]!;
  return { total: Number(r.total), heap: Number(r.heap), indexes: Number(r.indexes) };
}

/** Tuple bytes as stored (pg_column_size of whole rows: after compression, before page overhead). */
async function tupleBytes(db: Queryable, sql: string): Promise<number> {
  const { rows } = await db.query<{ n: string | null }>(sql);
  return Number(rows[0]!.n ?? 0);
}

export async function retrievalBytes(opts: BenchOptions): Promise<void> {
  const jobs = opts.jobs;
  await withScratchDatabase('retrieval_bytes', async (scratch) => {
    const db = new PostgresDb(scratch.url, { poolSize: PARALLEL, role: 'bench' });
    try {
      await migrate(db);
      await db.exec(`CREATE TABLE public.bench_context_documents (job_id uuid PRIMARY KEY, context jsonb NOT NULL);
                     CREATE TABLE public.bench_context_references (job_id uuid PRIMARY KEY, context jsonb NOT NULL);`);
      const org = await createOrganization(db, { name: 'retrieval bytes', plan: 'ENTERPRISE' });
      const rnd = lcg(42);
      const corpus = Array.from({ length: DOCUMENTS }, (_, i) => rule(i, rnd));
      await upsertDocuments(db, org.id, 'payer-rules', corpus);
      const workflowId = uuidv7();
      const knowledge = knowledgeService(db);
      const empty = await sizes(db, ['stepwise.retrievals', 'stepwise.retrieval_documents']);

      log(`${jobs} retrievals of ${PER_RETRIEVAL} documents from ${DOCUMENTS}, ${USED_PER_RETRIEVAL} marked used each`);
      const started = performance.now();
      let next = 0;
      const blobsDocuments: { jobId: string; context: unknown }[] = [];
      const blobsReferences: { jobId: string; context: unknown }[] = [];
      const flushBlobs = async () => {
        for (const [table, list] of [['bench_context_documents', blobsDocuments], ['bench_context_references', blobsReferences]] as const) {
          if (list.length === 0) continue;
          await db.query(`INSERT INTO public.${table} (job_id, context) SELECT * FROM unnest($1::uuid[], $2::jsonb[])`, [
            list.map((b) => b.jobId),
            pgJsonArray(list.map((b) => b.context)),
          ]);
          list.length = 0;
        }
      };
      const one = async (): Promise<void> => {
        const jobId = uuidv7();
        const payer = PAYERS[next % PAYERS.length]!;
        const service = SERVICES[next % SERVICES.length]!;
        const query = `${payer} or ${service} or authorization claim`;
        const retrieval: Retrieval = await knowledge.retrieve({
          organizationId: org.id, jobId, workflowId, stepPath: 'rules', collection: 'payer-rules', query, topK: PER_RETRIEVAL, tags: [],
        });
        check(retrieval.documents.length === PER_RETRIEVAL, `retrieval of job ${jobId} returned ${retrieval.documents.length} documents`);
        const used = retrieval.documents.slice(0, USED_PER_RETRIEVAL).map((d) => d.externalId);
        await knowledge.markUsed({ organizationId: org.id, jobId, usedByPath: 'decide', retrievalPath: 'rules', documents: used, reason: 'rule applied' });
        const usedAt = new Date().toISOString();
        const mark = (externalId: string) => (used.includes(externalId) ? { usedAt, usedByPath: 'decide', reason: 'rule applied' } : {});
        const head = { retrievalId: retrieval.id, stepPath: 'rules', collection: 'payer-rules', query, tookMs: retrieval.tookMs, averageScore: retrieval.averageScore };
        blobsDocuments.push({ jobId, context: { ...head, documents: retrieval.documents.map((d) => ({ ...d, ...mark(d.externalId) })) } });
        blobsReferences.push({
          jobId,
          context: { ...head, documents: retrieval.documents.map((d) => ({ id: d.id, rank: d.rank, score: d.score, ...mark(d.externalId) })) },
        });
      };
      while (next < jobs) {
        const batch: Promise<void>[] = [];
        for (let k = 0; k < PARALLEL && next < jobs; k++, next++) batch.push(one());
        await Promise.all(batch);
        if (blobsDocuments.length >= 500) await flushBlobs();
        if (next % 1_000 === 0) log(`${next} / ${jobs}`);
      }
      await flushBlobs();
      const seconds = (performance.now() - started) / 1000;

      await db.exec('VACUUM ANALYZE');
      const rowsSize = await sizes(db, ['stepwise.retrievals', 'stepwise.retrieval_documents']);
      const rowsTuples =
        (await tupleBytes(db, `SELECT sum(pg_column_size(r.*))::bigint::text AS n FROM stepwise.retrievals r`)) +
        (await tupleBytes(db, `SELECT sum(pg_column_size(d.*))::bigint::text AS n FROM stepwise.retrieval_documents d`));
      const { rows: counted } = await db.query<{ r: number; d: number; u: number }>(
        `SELECT (SELECT count(*)::int FROM stepwise.retrievals) AS r, (SELECT count(*)::int FROM stepwise.retrieval_documents) AS d,
                (SELECT count(*)::int FROM stepwise.retrieval_documents WHERE used_at IS NOT NULL) AS u`,
      );
      check(counted[0]!.r === jobs && counted[0]!.d === jobs * PER_RETRIEVAL && counted[0]!.u === jobs * USED_PER_RETRIEVAL, `unexpected row counts ${JSON.stringify(counted[0])}`);

      const common = { scenario: 'retrieval-bytes', retrievals: jobs, documentsPerRetrieval: PER_RETRIEVAL, usedPerRetrieval: USED_PER_RETRIEVAL };
      const perRetrieval = (bytes: number) => round(bytes / jobs, 1);
      emit({
        ...common,
        variant: 'rows',
        bytesPerRetrieval: perRetrieval(rowsSize.total - empty.total),
        heapBytesPerRetrieval: perRetrieval(rowsSize.heap - empty.heap),
        indexBytesPerRetrieval: perRetrieval(rowsSize.indexes - empty.indexes),
        tupleBytesPerRetrieval: perRetrieval(rowsTuples),
        retrievalsPerSecond: round(jobs / seconds, 1),
      });
      for (const table of ['bench_context_documents', 'bench_context_references']) {
        const s = await sizes(db, [`public.${table}`]);
        const tuples = await tupleBytes(db, `SELECT sum(pg_column_size(b.*))::bigint::text AS n FROM public.${table} b`);
        const raw = await tupleBytes(db, `SELECT sum(octet_length(context::text))::bigint::text AS n FROM public.${table}`);
        emit({
          ...common,
          variant: table === 'bench_context_documents' ? 'json-documents' : 'json-references',
          bytesPerRetrieval: perRetrieval(s.total),
          heapBytesPerRetrieval: perRetrieval(s.heap),
          indexBytesPerRetrieval: perRetrieval(s.indexes),
          tupleBytesPerRetrieval: perRetrieval(tuples),
          jsonTextBytesPerRetrieval: perRetrieval(raw),
        });
      }
    } finally {
      await db.close();
    }
  });
}
