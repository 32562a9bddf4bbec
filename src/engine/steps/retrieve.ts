import type { StepBase } from '../../model/definition.js';
import { COLLECTION_PATTERN, KNOWLEDGE_LIMITS, RETRIEVAL_MATCHES, TAG_PATTERN, type RetrievalMatch } from '../../model/knowledge.js';
import { renderString } from '../definition/expressions.js';
import { noChildren, noDirectCredentials, noExtraChecks, StepError, stepTimeout, type StepType } from './types.js';

/**
 * Ranks the documents of one of the organization's knowledge collections
 * against a query and records the retrieval (which documents, their rank
 * and score) for the job, once per step path: run again after a crash, the
 * step returns the documents it recorded the first time. Output:
 * `{ retrievalId, count, averageScore, documents: [{ id, externalId, type,
 * title, text, condition, action, tags, metadata, score, rank }] }`.
 */
export interface RetrieveStep extends StepBase {
  type: 'retrieve';
  collection: string;
  /** A `{{ }}` template; websearch syntax: "quoted phrase", or, -word (with `match: all`). */
  query: string;
  /** `all` (default): documents with every word (or as the search syntax says); `any`: documents with any word, more of them ranking higher. */
  match?: RetrievalMatch;
  /** Most documents returned (default 5, at most 50). */
  topK?: number;
  /** Only documents carrying every one of these tags. */
  tags?: string[];
}

export const retrieveStep: StepType<RetrieveStep> = {
  type: 'retrieve',
  properties: {
    collection: { type: 'string', pattern: COLLECTION_PATTERN },
    query: { type: 'string', minLength: 1, maxLength: 10_000 },
    topK: { type: 'integer', minimum: 1, maximum: KNOWLEDGE_LIMITS.maxTopK },
    match: { enum: [...RETRIEVAL_MATCHES] },
    tags: { type: 'array', maxItems: KNOWLEDGE_LIMITS.tags, uniqueItems: true, items: { type: 'string', pattern: TAG_PATTERN } },
  },
  required: ['collection', 'query'],
  sources: (step) => ({ templates: { query: step.query } }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  // It reads the organization's documents and writes only Stepwise's own record, idempotently per (job, step path).
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const knowledge = ctx.services.knowledge;
    if (!knowledge) throw new StepError('SERVICE_UNAVAILABLE', 'this worker cannot retrieve documents (no knowledge service)');
    const query = (await renderString(step.query, ctx.scope, `steps.${step.id}.query`)).trim();
    if (query === '') throw new StepError('RETRIEVE_QUERY_EMPTY', 'the query rendered to empty text', { collection: step.collection });
    if (query.length > KNOWLEDGE_LIMITS.queryChars) {
      throw new StepError('RETRIEVE_QUERY_TOO_LONG', `the query rendered to ${query.length} characters; the limit is ${KNOWLEDGE_LIMITS.queryChars}`, {
        length: query.length,
        limit: KNOWLEDGE_LIMITS.queryChars,
      });
    }
    const retrieval = await knowledge.retrieve({
      organizationId: ctx.job.organizationId,
      jobId: ctx.job.id,
      workflowId: ctx.job.workflowId,
      stepPath: ctx.path,
      collection: step.collection,
      query,
      topK: step.topK ?? KNOWLEDGE_LIMITS.defaultTopK,
      tags: step.tags ?? [],
      match: step.match,
    });
    const count = retrieval.documents.length;
    // Written on a re-run too: a crash before the flush lost the first run's row with its outcome.
    ctx.event('RETRIEVED', `${count} document${count === 1 ? '' : 's'} from ${step.collection}`, {
      retrievalId: retrieval.id,
      collection: step.collection,
      count,
      averageScore: retrieval.averageScore,
      tookMs: retrieval.tookMs,
      recorded: !retrieval.created,
    });
    if (retrieval.missingDocuments) {
      ctx.log('WARN', `${retrieval.missingDocuments} recorded document(s) were deleted from ${step.collection} since this retrieval and are left out`, {
        retrievalId: retrieval.id,
        missing: retrieval.missingDocuments,
      });
    }
    return { retrievalId: retrieval.id, count, averageScore: retrieval.averageScore, documents: retrieval.documents };
  },
};
