import type { KnowledgeDocument, StoredRetrieval } from '../store/index.js';
import { MASKED } from './phi-mask.js';

/** JSON views of knowledge documents and of a job's retrieval record (GET /v1/jobs/:id/retrievals). */

export function documentView(d: KnowledgeDocument) {
  return {
    id: d.id,
    collection: d.collection,
    externalId: d.externalId,
    type: d.type,
    title: d.title,
    text: d.text,
    condition: d.condition,
    action: d.action,
    tags: d.tags,
    metadata: d.metadata,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
  };
}

export interface RetrievedDocumentView {
  rank: number;
  score: number;
  documentId: string;
  /** Null (and deleted true) for a document deleted since the retrieval. */
  externalId: string | null;
  type: string | null;
  title: string | null;
  deleted: boolean;
  used: boolean;
  usedAt: string | null;
  usedByPath: string | null;
  usedReason: string | null;
}

export interface RetrievalView {
  id: string;
  stepPath: string;
  collection: string;
  query: string;
  tookMs: number;
  count: number;
  averageScore: number | null;
  createdAt: string;
  documents: RetrievedDocumentView[];
}

/**
 * A recorded retrieval with each document's current external id, type and
 * title (the record keeps ids only: a few hundred bytes per retrieval).
 * `mask`: the query and used reasons, rendered from the run's data, are
 * replaced for a PHI workflow read with `?phi=mask`.
 */
export function retrievalView(r: StoredRetrieval, docs: ReadonlyMap<string, KnowledgeDocument>, mask = false): RetrievalView {
  return {
    id: r.id,
    stepPath: r.stepPath,
    collection: r.collection,
    query: mask ? MASKED : r.query,
    tookMs: r.tookMs,
    count: r.count,
    averageScore: r.averageScore,
    createdAt: r.createdAt,
    documents: r.documents.map((d) => {
      const doc = docs.get(d.documentId);
      return {
        rank: d.rank,
        score: d.score,
        documentId: d.documentId,
        externalId: doc?.externalId ?? null,
        type: doc?.type ?? null,
        title: doc?.title ?? null,
        deleted: doc === undefined,
        used: d.usedAt !== null,
        usedAt: d.usedAt,
        usedByPath: d.usedByPath,
        usedReason: mask && d.usedReason !== null ? MASKED : d.usedReason,
      };
    }),
  };
}
