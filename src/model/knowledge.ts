/**
 * Limits of knowledge collections, shared by the API, the retrieve and
 * markUsed steps and the columns of migration 0024 (which enforce the same).
 */

/** A collection's name: in a URL path and a step definition as it is. */
export const COLLECTION_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';

/** A tag: matched exactly by a retrieve step's `tags` filter, and searched as words. */
export const TAG_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}$';

export const KNOWLEDGE_LIMITS = Object.freeze({
  externalIdChars: 200,
  typeChars: 64,
  titleChars: 500,
  textChars: 20_000,
  conditionChars: 4_000,
  actionChars: 4_000,
  tags: 32,
  metadataBytes: 16_384,
  /** Documents per POST (the request body is at most 2 MiB besides). */
  documentsPerRequest: 500,
  /** A retrieval's query after its template is rendered (retrievals.query). */
  queryChars: 2_000,
  defaultTopK: 5,
  maxTopK: 50,
  /** Names one markUsed step may mark. */
  markNames: 200,
  /** A markUsed reason after its template is rendered (retrieval_documents.used_reason). */
  reasonChars: 500,
});

/**
 * How a query's words must match: `all` (the default) every word, or as the
 * query's search syntax says; `any` any word, documents with more of them
 * ranking higher (store/knowledge.ts rankedDocumentsSql).
 */
export const RETRIEVAL_MATCHES = ['all', 'any'] as const;
export type RetrievalMatch = (typeof RETRIEVAL_MATCHES)[number];
