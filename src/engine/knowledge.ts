import type { Queryable } from '../db/index.js';
import { findRecordedRetrieval, markDocumentsUsed, recordRetrieval, type RetrievedRow } from '../store/index.js';
import { uuidv7 } from '../util/ids.js';
import type { KnowledgeService, MarkUsedRequest, Retrieval, RetrievalRequest, RetrievedDocument } from './services.js';

/**
 * The knowledge service of retrieve and markUsed steps (and an llm step's
 * usedDocuments), over the database. A retrieval is recorded once per
 * (job, step path): a step that runs again after a crash gets the documents
 * recorded the first time, whatever changed in the collection since.
 */
export function knowledgeService(db: Queryable): KnowledgeService {
  return {
    retrieve: (request) => retrieve(db, request),
    markUsed: (request) => markUsed(db, request),
  };
}

function toRetrieved(d: RetrievedRow): RetrievedDocument {
  return {
    id: d.id,
    externalId: d.externalId,
    type: d.type,
    title: d.title,
    text: d.text,
    condition: d.condition,
    action: d.action,
    tags: d.tags,
    metadata: d.metadata,
    score: d.score,
    rank: d.rank,
  };
}

async function retrieve(db: Queryable, r: RetrievalRequest): Promise<Retrieval> {
  const made = await recordRetrieval(db, {
    id: uuidv7(),
    organizationId: r.organizationId,
    jobId: r.jobId,
    workflowId: r.workflowId,
    stepPath: r.stepPath,
    collection: r.collection,
    query: r.query,
    topK: r.topK,
    tags: r.tags,
    match: r.match ?? 'all',
  });
  if (made) {
    return { id: made.id, created: true, query: r.query, tookMs: made.tookMs, averageScore: made.averageScore, documents: made.documents.map(toRetrieved) };
  }
  const recorded = await findRecordedRetrieval(db, r.organizationId, r.jobId, r.stepPath);
  // The insert met a recorded retrieval, so it exists unless the job's record was archived or expired meanwhile.
  if (!recorded) throw new Error(`retrieval of job ${r.jobId} at ${r.stepPath} was recorded but cannot be read back`);
  return {
    id: recorded.id,
    created: false,
    query: recorded.query,
    tookMs: recorded.tookMs,
    averageScore: recorded.averageScore,
    documents: recorded.documents.map(toRetrieved),
    ...(recorded.missing > 0 ? { missingDocuments: recorded.missing } : {}),
  };
}

async function markUsed(db: Queryable, m: MarkUsedRequest): Promise<{ marked: number; unknown: string[]; retrievals: number }> {
  const names = [...new Set(m.documents)];
  const retrievalPaths = m.retrievalPaths ?? (m.retrievalPath === null ? null : [m.retrievalPath]);
  const { retrievals, matched } = await markDocumentsUsed(db, {
    organizationId: m.organizationId,
    jobId: m.jobId,
    retrievalPaths,
    names,
    usedByPath: m.usedByPath,
    reason: m.reason,
  });
  const known = new Set<string>();
  for (const x of matched) {
    known.add(x.documentId);
    if (x.externalId !== null) known.add(x.externalId);
  }
  return { marked: matched.length, unknown: names.filter((n) => !known.has(n)), retrievals };
}
