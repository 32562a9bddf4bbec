import { pgArray, type Queryable } from '../db/index.js';
import type { RetrievalMatch } from '../model/knowledge.js';

/**
 * SQL of knowledge collections: an organization's documents (payer rules,
 * policies) by collection, their ranking against a query, and the daily
 * retrieved/used counts analytics reads. The retrieval record itself is in
 * store/retrievals.ts.
 */

/** The text-search configuration of the documents' `search` column (migration 0024) and of every query against it. */
export const KNOWLEDGE_TS_CONFIG = 'english';

/** A document as the API writes it (limits checked by the route schema and the columns). */
export interface KnowledgeDocumentInput {
  externalId: string;
  type: string;
  title: string;
  text: string;
  condition: string | null;
  action: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
}

export interface KnowledgeDocument extends KnowledgeDocumentInput {
  id: string;
  collection: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface DocumentRow {
  id: string;
  collection: string;
  external_id: string;
  type: string;
  title: string;
  text: string;
  condition: string | null;
  action: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export const DOCUMENT_COLUMNS = `d.id, d.collection, d.external_id, d.type, d.title, d.text, d.condition, d.action, d.tags, d.metadata, d.created_at, d.updated_at`;

export function toDocument(r: DocumentRow): KnowledgeDocument {
  return {
    id: r.id,
    collection: r.collection,
    externalId: r.external_id,
    type: r.type,
    title: r.title,
    text: r.text,
    condition: r.condition,
    action: r.action,
    tags: r.tags,
    metadata: r.metadata,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * The ranked documents of one collection for a query, as a subquery giving
 * (id, score, rank), best first: `websearch_to_tsquery` (quoted phrases, OR,
 * -word), `ts_rank_cd` (cover density: query words close together count
 * more) normalised by 32 into [0, 1), every tag in `tags` required, ties
 * broken by id (the older document first). The retrieve step records what
 * this returns and the search route shows it, so both rank alike.
 * Placeholders: organization, collection, query text, tags (text[]), limit,
 * match (`all` or `any`).
 *
 * `any` matches documents holding any word of the query (its words joined
 * by OR, search syntax ignored), still ranked by cover density, so documents
 * with more of the words rank higher: for a query rendered from a run's
 * input (a whole letter, a claim's fields), which almost never has every
 * word in one rule, so that `all` finds nothing.
 */
export function rankedDocumentsSql(p: { org: string; collection: string; query: string; tags: string; limit: string; match: string }): string {
  return `SELECT h.id, h.score, row_number() OVER (ORDER BY h.score DESC, h.id)::smallint AS rank
    FROM (SELECT d.id, ts_rank_cd(d.search, q.query, 32)::real AS score
            FROM stepwise.knowledge_documents d,
                 (SELECT CASE WHEN ${p.match}::text = 'any'
                              -- plainto_tsquery joins its lexemes with ' & ' (each lexeme quoted, so the text has no other)
                              THEN replace(plainto_tsquery('${KNOWLEDGE_TS_CONFIG}', ${p.query})::text, ' & ', ' | ')::tsquery
                              ELSE websearch_to_tsquery('${KNOWLEDGE_TS_CONFIG}', ${p.query}) END AS query) q
           WHERE d.organization_id = ${p.org} AND d.collection = ${p.collection}
             AND d.search @@ q.query AND d.tags @> ${p.tags}::text[]
           ORDER BY score DESC, d.id
           LIMIT ${p.limit}) h`;
}

/**
 * Insert or update documents by (organization, collection, external id), in
 * one statement; the caller has made external ids unique within the batch.
 * Returns each document's id and whether it was new, in input order.
 */
export async function upsertDocuments(
  db: Queryable,
  organizationId: string,
  collection: string,
  docs: readonly (KnowledgeDocumentInput & { id: string })[],
): Promise<{ id: string; externalId: string; created: boolean }[]> {
  if (docs.length === 0) return [];
  const payload = docs.map((d) => ({
    id: d.id,
    external_id: d.externalId,
    type: d.type,
    title: d.title,
    text: d.text,
    condition: d.condition,
    action: d.action,
    tags: d.tags,
    metadata: d.metadata,
  }));
  const { rows } = await db.query<{ id: string; external_id: string; created: boolean }>(
    `INSERT INTO stepwise.knowledge_documents AS k
            (id, organization_id, collection, external_id, type, title, text, condition, action, tags, metadata)
     SELECT u.id, $1, $2, u.external_id, u.type, u.title, u.text, u.condition, u.action, u.tags, u.metadata
       FROM jsonb_to_recordset($3::jsonb)
            AS u(id uuid, external_id text, type text, title text, text text, condition text, action text, tags text[], metadata jsonb)
     ON CONFLICT (organization_id, collection, external_id) DO UPDATE
        SET type = EXCLUDED.type, title = EXCLUDED.title, text = EXCLUDED.text, condition = EXCLUDED.condition,
            action = EXCLUDED.action, tags = EXCLUDED.tags, metadata = EXCLUDED.metadata, updated_at = now()
     RETURNING k.id, k.external_id, (k.xmax = 0) AS created`,
    [organizationId, collection, JSON.stringify(payload)],
  );
  const byExternal = new Map(rows.map((r) => [r.external_id, r]));
  return docs.map((d) => {
    const r = byExternal.get(d.externalId)!;
    return { id: r.id, externalId: r.external_id, created: r.created };
  });
}

/** One page of a collection's documents in external id order, after `afterExternalId`. */
export async function listDocuments(
  db: Queryable,
  organizationId: string,
  collection: string,
  page: { afterExternalId: string | null; limit: number },
): Promise<{ items: KnowledgeDocument[]; nextAfter: string | null }> {
  const { rows } = await db.query<DocumentRow>(
    `SELECT ${DOCUMENT_COLUMNS} FROM stepwise.knowledge_documents d
      WHERE d.organization_id = $1 AND d.collection = $2 AND ($3::text IS NULL OR d.external_id > $3)
      ORDER BY d.external_id
      LIMIT $4`,
    [organizationId, collection, page.afterExternalId, page.limit + 1],
  );
  const items = rows.slice(0, page.limit).map(toDocument);
  return { items, nextAfter: rows.length > page.limit ? items[items.length - 1]!.externalId : null };
}

export async function findDocument(db: Queryable, organizationId: string, collection: string, externalId: string): Promise<KnowledgeDocument | null> {
  const { rows } = await db.query<DocumentRow>(
    `SELECT ${DOCUMENT_COLUMNS} FROM stepwise.knowledge_documents d
      WHERE d.organization_id = $1 AND d.collection = $2 AND d.external_id = $3`,
    [organizationId, collection, externalId],
  );
  return rows[0] ? toDocument(rows[0]) : null;
}

/** Delete one document; its retrieval record stays (shown as a deleted document). */
export async function deleteDocument(db: Queryable, organizationId: string, collection: string, externalId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `DELETE FROM stepwise.knowledge_documents WHERE organization_id = $1 AND collection = $2 AND external_id = $3`,
    [organizationId, collection, externalId],
  );
  return rowCount > 0;
}

export interface CollectionSummary {
  collection: string;
  documents: number;
  updatedAt: Date;
}

/** The organization's collections with their document counts (an index range of the unique key). */
export async function listCollections(db: Queryable, organizationId: string): Promise<CollectionSummary[]> {
  const { rows } = await db.query<{ collection: string; n: number; updated_at: Date }>(
    `SELECT collection, count(*)::int AS n, max(updated_at) AS updated_at FROM stepwise.knowledge_documents
      WHERE organization_id = $1 GROUP BY collection ORDER BY collection`,
    [organizationId],
  );
  return rows.map((r) => ({ collection: r.collection, documents: r.n, updatedAt: r.updated_at }));
}

export interface SearchHit extends KnowledgeDocument {
  score: number;
  rank: number;
}

/** The search route: the retrieve step's ranking, without recording anything. */
export async function searchDocuments(
  db: Queryable,
  organizationId: string,
  collection: string,
  q: { query: string; tags: readonly string[]; limit: number; match: RetrievalMatch },
): Promise<SearchHit[]> {
  const { rows } = await db.query<DocumentRow & { score: number; rank: number }>(
    `SELECT ${DOCUMENT_COLUMNS}, h.score, h.rank
       FROM (${rankedDocumentsSql({ org: '$1', collection: '$2', query: '$3', tags: '$4', limit: '$5', match: '$6' })}) h
       JOIN stepwise.knowledge_documents d ON d.id = h.id
      ORDER BY h.rank`,
    [organizationId, collection, q.query, pgArray(q.tags), q.limit, q.match],
  );
  return rows.map((r) => ({ ...toDocument(r), score: r.score, rank: r.rank }));
}

/** Retrieved and used counts of one document, in total and per workflow. */
export interface DocumentUsage {
  documentId: string;
  /** Null for a document deleted since. */
  externalId: string | null;
  title: string | null;
  retrieved: number;
  used: number;
  workflows: { workflowId: string; workflowName: string | null; retrieved: number; used: number }[];
}

/**
 * Per document of a collection, how often it was retrieved and used on the
 * days overlapping [from, to) (UTC), optionally for one workflow: the
 * `limit` most retrieved documents, each with its per-workflow split. Reads
 * only the daily counts, so archived and expired jobs still count.
 */
export async function documentUsage(
  db: Queryable,
  organizationId: string,
  collection: string,
  q: { from: Date; to: Date; workflowId: string | null; limit: number },
): Promise<DocumentUsage[]> {
  const { rows } = await db.query<{
    document_id: string;
    external_id: string | null;
    title: string | null;
    total_retrieved: string;
    total_used: string;
    workflow_id: string;
    workflow_name: string | null;
    retrieved: string;
    used: string;
  }>(
    `WITH days AS (
       SELECT u.document_id, u.workflow_id, sum(u.retrieved) AS retrieved, sum(u.used) AS used
         FROM stepwise.knowledge_usage_daily u
        WHERE u.organization_id = $1 AND u.collection = $2
          AND u.day >= ($3::timestamptz AT TIME ZONE 'UTC')::date AND u.day < ($4::timestamptz AT TIME ZONE 'UTC')
          AND ($5::uuid IS NULL OR u.workflow_id = $5)
        GROUP BY u.document_id, u.workflow_id),
     top AS (
       SELECT document_id, sum(retrieved) AS retrieved, sum(used) AS used FROM days
        GROUP BY document_id ORDER BY sum(retrieved) DESC, sum(used) DESC, document_id LIMIT $6)
     SELECT t.document_id, d.external_id, d.title, t.retrieved::text AS total_retrieved, t.used::text AS total_used,
            x.workflow_id, w.name AS workflow_name, x.retrieved::text AS retrieved, x.used::text AS used
       FROM top t
       JOIN days x ON x.document_id = t.document_id
       LEFT JOIN stepwise.knowledge_documents d ON d.organization_id = $1 AND d.id = t.document_id
       LEFT JOIN stepwise.workflows w ON w.organization_id = $1 AND w.id = x.workflow_id
      ORDER BY t.retrieved DESC, t.used DESC, t.document_id, x.retrieved DESC, x.workflow_id`,
    [organizationId, collection, q.from.toISOString(), q.to.toISOString(), q.workflowId, q.limit],
  );
  const out: DocumentUsage[] = [];
  for (const r of rows) {
    let doc = out[out.length - 1];
    if (!doc || doc.documentId !== r.document_id) {
      doc = { documentId: r.document_id, externalId: r.external_id, title: r.title, retrieved: Number(r.total_retrieved), used: Number(r.total_used), workflows: [] };
      out.push(doc);
    }
    doc.workflows.push({ workflowId: r.workflow_id, workflowName: r.workflow_name, retrieved: Number(r.retrieved), used: Number(r.used) });
  }
  return out;
}
