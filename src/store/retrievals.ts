import { pgArray, type Queryable } from '../db/index.js';
import type { RetrievalMatch } from '../model/knowledge.js';
import { DOCUMENT_COLUMNS, rankedDocumentsSql, toDocument, type DocumentRow, type KnowledgeDocument } from './knowledge.js';

/**
 * SQL of the retrieval record: what a retrieve step returned (one row per
 * retrieval, one narrow row per document) and which of those documents the
 * run used; and the moves of that record with its job's stream (archive,
 * restore, expiry). Timestamps leave and come back as text with their
 * microseconds, so an archived record restores exactly.
 */

/** A document of a retrieval as recorded: its rank, score and used mark (the document's own fields are read from it). */
export interface StoredRetrievalDocument {
  rank: number;
  documentId: string;
  score: number;
  /** ISO 8601 with microseconds, or null while unused. */
  usedAt: string | null;
  usedByPath: string | null;
  usedReason: string | null;
}

export interface StoredRetrieval {
  id: string;
  jobId: string;
  workflowId: string;
  stepPath: string;
  collection: string;
  query: string;
  tookMs: number;
  count: number;
  averageScore: number | null;
  /** ISO 8601 with microseconds. */
  createdAt: string;
  documents: StoredRetrievalDocument[];
}

const ISO_US = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

export interface NewRetrieval {
  id: string;
  organizationId: string;
  jobId: string;
  workflowId: string;
  stepPath: string;
  collection: string;
  query: string;
  topK: number;
  tags: readonly string[];
  match: RetrievalMatch;
}

/** A document as a retrieval returns it. */
export interface RetrievedRow extends KnowledgeDocument {
  score: number;
  rank: number;
}

export interface RecordedRetrieval {
  id: string;
  tookMs: number;
  averageScore: number | null;
  documents: RetrievedRow[];
}

/**
 * Rank the collection and record the retrieval in ONE statement: the
 * ranking, the retrieval row, its document rows and the day's retrieved
 * counts (taken in key order, so concurrent retrievals of the same
 * documents never deadlock). Null when (job, step path) already has a
 * retrieval: nothing was written, read the recorded one instead. took_ms
 * is the ranking's time inside the database (the aggregate over the hits
 * is computed after they are all found).
 */
export async function recordRetrieval(db: Queryable, r: NewRetrieval): Promise<RecordedRetrieval | null> {
  const { rows } = await db.query<
    Partial<DocumentRow> & { retrieval_id: string; took_ms: number; average_score: number | null; score: number | null; rank: number | null }
  >(
    `WITH hits AS (${rankedDocumentsSql({ org: '$1', collection: '$2', query: '$3', tags: '$4', limit: '$5', match: '$10' })}),
     r AS (
       INSERT INTO stepwise.retrievals (id, organization_id, job_id, workflow_id, took_ms, average_score, count, collection, step_path, query)
       SELECT $6, $1, $7, $8, (extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::int,
              avg(h.score)::real, count(*), $2, $9, $3
         FROM hits h
       ON CONFLICT (organization_id, job_id, step_path) DO NOTHING
       RETURNING id, took_ms, average_score, created_at),
     docs AS (
       INSERT INTO stepwise.retrieval_documents (retrieval_id, document_id, score, rank)
       SELECT r.id, h.id, h.score, h.rank FROM r, hits h),
     usage AS (
       INSERT INTO stepwise.knowledge_usage_daily AS u (organization_id, collection, day, workflow_id, document_id, retrieved)
       SELECT $1, $2, (r.created_at AT TIME ZONE 'UTC')::date, $8, h.id, 1 FROM r, hits h ORDER BY h.id
       ON CONFLICT (organization_id, collection, day, workflow_id, document_id) DO UPDATE SET retrieved = u.retrieved + 1)
     SELECT r.id AS retrieval_id, r.took_ms, r.average_score, h.score, h.rank, ${DOCUMENT_COLUMNS}
       FROM r
       LEFT JOIN hits h ON true
       LEFT JOIN stepwise.knowledge_documents d ON d.id = h.id
      ORDER BY h.rank`,
    [r.organizationId, r.collection, r.query, pgArray(r.tags), r.topK, r.id, r.jobId, r.workflowId, r.stepPath, r.match],
  );
  const first = rows[0];
  if (!first) return null;
  return {
    id: first.retrieval_id,
    tookMs: first.took_ms,
    averageScore: first.average_score,
    documents: rows
      .filter((row) => row.rank !== null)
      .map((row) => ({ ...toDocument(row as DocumentRow), score: row.score!, rank: row.rank! })),
  };
}

/**
 * The retrieval recorded for (job, step path), with its documents as they
 * are now (a document deleted since is left out), or null.
 */
export async function findRecordedRetrieval(
  db: Queryable,
  organizationId: string,
  jobId: string,
  stepPath: string,
): Promise<(RecordedRetrieval & { query: string; missing: number }) | null> {
  const { rows } = await db.query<
    Partial<DocumentRow> & {
      retrieval_id: string;
      query: string;
      took_ms: number;
      average_score: number | null;
      score: number | null;
      rank: number | null;
      document_id: string | null;
    }
  >(
    `SELECT r.id AS retrieval_id, r.query, r.took_ms, r.average_score, rd.score, rd.rank, rd.document_id, ${DOCUMENT_COLUMNS}
       FROM stepwise.retrievals r
       LEFT JOIN stepwise.retrieval_documents rd ON rd.retrieval_id = r.id
       LEFT JOIN stepwise.knowledge_documents d ON d.organization_id = r.organization_id AND d.id = rd.document_id
      WHERE r.organization_id = $1 AND r.job_id = $2 AND r.step_path = $3
      ORDER BY rd.rank`,
    [organizationId, jobId, stepPath],
  );
  const first = rows[0];
  if (!first) return null;
  const recorded = rows.filter((row) => row.rank !== null);
  const present = recorded.filter((row) => row.id !== null);
  return {
    id: first.retrieval_id,
    query: first.query,
    tookMs: first.took_ms,
    averageScore: first.average_score,
    missing: recorded.length - present.length,
    documents: present.map((row) => ({ ...toDocument(row as DocumentRow), score: row.score!, rank: row.rank! })),
  };
}

export interface MarkUsed {
  organizationId: string;
  jobId: string;
  /** Candidate retrieve step paths, innermost first: the first with a retrieval in the job is used. Null: every retrieval of the job. */
  retrievalPaths: readonly string[] | null;
  /** External ids or document ids. */
  names: readonly string[];
  usedByPath: string;
  reason: string | null;
}

/**
 * Mark the named documents of the job's retrievals used, in one statement:
 * a document already marked keeps its first mark; the day's used counts of
 * newly marked ones go up (on the retrieval's day, in key order). Returns
 * how many retrievals were looked at and the names of the document rows
 * that matched (newly marked or not).
 */
export async function markDocumentsUsed(db: Queryable, m: MarkUsed): Promise<{ retrievals: number; matched: { documentId: string; externalId: string | null }[] }> {
  const { rows } = await db.query<{ retrievals: number; matched: { document_id: string; external_id: string | null }[] | null }>(
    `WITH r AS (
       SELECT id, workflow_id, collection, created_at, step_path FROM stepwise.retrievals
        WHERE organization_id = $1 AND job_id = $2 AND ($3::text[] IS NULL OR step_path = ANY($3::text[]))),
     pick AS (
       SELECT * FROM r
        WHERE $3::text[] IS NULL
           OR step_path = (SELECT step_path FROM r ORDER BY array_position($3::text[], step_path::text) LIMIT 1)),
     m AS (
       SELECT rd.retrieval_id, rd.rank, rd.document_id, d.external_id, p.workflow_id, p.collection, p.created_at
         FROM pick p
         JOIN stepwise.retrieval_documents rd ON rd.retrieval_id = p.id
         LEFT JOIN stepwise.knowledge_documents d ON d.organization_id = $1 AND d.id = rd.document_id
        WHERE d.external_id = ANY($4::text[]) OR rd.document_id::text = ANY($4::text[])),
     upd AS (
       UPDATE stepwise.retrieval_documents rd SET used_at = now(), used_by_path = $5, used_reason = $6
         FROM m
        WHERE rd.retrieval_id = m.retrieval_id AND rd.rank = m.rank AND rd.used_at IS NULL
       RETURNING rd.retrieval_id, rd.rank),
     usage AS (
       INSERT INTO stepwise.knowledge_usage_daily AS u (organization_id, collection, day, workflow_id, document_id, used)
       SELECT $1, m.collection, (m.created_at AT TIME ZONE 'UTC')::date, m.workflow_id, m.document_id, count(*)
         FROM upd JOIN m ON m.retrieval_id = upd.retrieval_id AND m.rank = upd.rank
        GROUP BY 2, 3, 4, 5
        ORDER BY 2, 3, 4, 5
       ON CONFLICT (organization_id, collection, day, workflow_id, document_id) DO UPDATE SET used = u.used + EXCLUDED.used)
     SELECT (SELECT count(*)::int FROM pick) AS retrievals,
            (SELECT json_agg(json_build_object('document_id', m.document_id, 'external_id', m.external_id)) FROM m) AS matched`,
    [m.organizationId, m.jobId, m.retrievalPaths === null ? null : pgArray(m.retrievalPaths), pgArray(m.names), m.usedByPath, m.reason],
  );
  const row = rows[0]!;
  return { retrievals: row.retrievals, matched: (row.matched ?? []).map((x) => ({ documentId: x.document_id, externalId: x.external_id })) };
}

interface StoredRetrievalRow {
  id: string;
  job_id: string;
  workflow_id: string;
  step_path: string;
  collection: string;
  query: string;
  took_ms: number;
  count: number;
  average_score: number | null;
  created_at: string;
  documents: { rank: number; document_id: string; score: number; used_at: string | null; used_by_path: string | null; used_reason: string | null }[] | null;
}

const STORED_RETRIEVAL_SELECT = `SELECT r.id, r.job_id, r.workflow_id, r.step_path, r.collection, r.query, r.took_ms, r.count, r.average_score,
         to_char(r.created_at AT TIME ZONE 'UTC', ${ISO_US}) AS created_at,
         (SELECT json_agg(json_build_object('rank', rd.rank, 'document_id', rd.document_id, 'score', rd.score,
                    'used_at', to_char(rd.used_at AT TIME ZONE 'UTC', ${ISO_US}), 'used_by_path', rd.used_by_path, 'used_reason', rd.used_reason)
                  ORDER BY rd.rank)
            FROM stepwise.retrieval_documents rd WHERE rd.retrieval_id = r.id) AS documents
    FROM stepwise.retrievals r`;

function toStored(r: StoredRetrievalRow): StoredRetrieval {
  return {
    id: r.id,
    jobId: r.job_id,
    workflowId: r.workflow_id,
    stepPath: r.step_path,
    collection: r.collection,
    query: r.query,
    tookMs: r.took_ms,
    count: r.count,
    averageScore: r.average_score,
    createdAt: r.created_at,
    documents: (r.documents ?? []).map((d) => ({
      rank: d.rank,
      documentId: d.document_id,
      score: d.score,
      usedAt: d.used_at,
      usedByPath: d.used_by_path,
      usedReason: d.used_reason,
    })),
  };
}

/** A job's live retrievals in the order they were made. */
export async function listJobRetrievals(db: Queryable, organizationId: string, jobId: string): Promise<StoredRetrieval[]> {
  const { rows } = await db.query<StoredRetrievalRow>(
    `${STORED_RETRIEVAL_SELECT} WHERE r.organization_id = $1 AND r.job_id = $2 ORDER BY r.created_at, r.id`,
    [organizationId, jobId],
  );
  return rows.map(toStored);
}

/** The live retrievals of a batch of jobs (the archiver's read), by job, each job's in the order made. */
export async function readRetrievalsForArchive(db: Queryable, organizationId: string, jobIds: readonly string[]): Promise<Map<string, StoredRetrieval[]>> {
  const out = new Map<string, StoredRetrieval[]>();
  if (jobIds.length === 0) return out;
  const { rows } = await db.query<StoredRetrievalRow>(
    `${STORED_RETRIEVAL_SELECT} WHERE r.organization_id = $1 AND r.job_id = ANY($2::uuid[]) ORDER BY r.job_id, r.created_at, r.id`,
    [organizationId, pgArray(jobIds)],
  );
  for (const row of rows) {
    const list = out.get(row.job_id);
    if (list) list.push(toStored(row));
    else out.set(row.job_id, [toStored(row)]);
  }
  return out;
}

/** Delete retrievals by id with their documents (archived: the archive now holds them). */
export async function deleteRetrievals(tx: Queryable, organizationId: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await tx.query(`DELETE FROM stepwise.retrievals WHERE organization_id = $1 AND id = ANY($2::uuid[])`, [organizationId, pgArray(ids)]);
  return rowCount;
}

/** Delete every retrieval of these jobs with their documents (expiry deletes the jobs). */
export async function deleteRetrievalsOfJobs(tx: Queryable, organizationId: string, jobIds: readonly string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const { rowCount } = await tx.query(`DELETE FROM stepwise.retrievals WHERE organization_id = $1 AND job_id = ANY($2::uuid[])`, [
    organizationId,
    pgArray(jobIds),
  ]);
  return rowCount;
}

/**
 * Put archived retrievals back (restore), two statements whatever their
 * number; ones already present are left as they are. The daily counts were
 * never taken out, so they are not touched.
 */
export async function insertRestoredRetrievals(tx: Queryable, organizationId: string, retrievals: readonly StoredRetrieval[]): Promise<void> {
  if (retrievals.length === 0) return;
  await tx.query(
    `INSERT INTO stepwise.retrievals (id, organization_id, job_id, workflow_id, created_at, took_ms, average_score, count, collection, step_path, query)
     SELECT u.id, $1, u.job_id, u.workflow_id, u.created_at, u.took_ms, u.average_score, u.count, u.collection, u.step_path, u.query
       FROM jsonb_to_recordset($2::jsonb) AS u(id uuid, job_id uuid, workflow_id uuid, created_at timestamptz, took_ms int,
                                               average_score real, count smallint, collection text, step_path text, query text)
     ON CONFLICT DO NOTHING`,
    [
      organizationId,
      JSON.stringify(
        retrievals.map((r) => ({
          id: r.id,
          job_id: r.jobId,
          workflow_id: r.workflowId,
          created_at: r.createdAt,
          took_ms: r.tookMs,
          average_score: r.averageScore,
          count: r.count,
          collection: r.collection,
          step_path: r.stepPath,
          query: r.query,
        })),
      ),
    ],
  );
  await tx.query(
    `INSERT INTO stepwise.retrieval_documents (retrieval_id, document_id, score, rank, used_at, used_by_path, used_reason)
     SELECT u.retrieval_id, u.document_id, u.score, u.rank, u.used_at, u.used_by_path, u.used_reason
       FROM jsonb_to_recordset($1::jsonb) AS u(retrieval_id uuid, document_id uuid, score real, rank smallint,
                                               used_at timestamptz, used_by_path text, used_reason text)
     ON CONFLICT DO NOTHING`,
    [
      JSON.stringify(
        retrievals.flatMap((r) =>
          r.documents.map((d) => ({
            retrieval_id: r.id,
            document_id: d.documentId,
            score: d.score,
            rank: d.rank,
            used_at: d.usedAt,
            used_by_path: d.usedByPath,
            used_reason: d.usedReason,
          })),
        ),
      ),
    ],
  );
}

/** A document of the organization by id, for showing a recorded retrieval (deleted ones are absent). */
export async function findDocumentsByIds(db: Queryable, organizationId: string, ids: readonly string[]): Promise<Map<string, KnowledgeDocument>> {
  const out = new Map<string, KnowledgeDocument>();
  if (ids.length === 0) return out;
  const { rows } = await db.query<DocumentRow>(
    `SELECT ${DOCUMENT_COLUMNS} FROM stepwise.knowledge_documents d WHERE d.organization_id = $1 AND d.id = ANY($2::uuid[])`,
    [organizationId, pgArray([...new Set(ids)])],
  );
  for (const r of rows) out.set(r.id, toDocument(r));
  return out;
}
