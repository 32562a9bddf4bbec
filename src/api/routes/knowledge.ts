import type { FastifyInstance } from 'fastify';
import type { BlobStore } from '../../blob/index.js';
import type { Db } from '../../db/index.js';
import { NotFoundError, ValidationError } from '../../errors/index.js';
import { readJobRetrievals } from '../../lifecycle/index.js';
import { COLLECTION_PATTERN, KNOWLEDGE_LIMITS, RETRIEVAL_MATCHES, TAG_PATTERN, type RetrievalMatch } from '../../model/knowledge.js';
import { documentView, retrievalView } from '../../read/knowledge.js';
import { declaresPhi } from '../../read/index.js';
import {
  deleteDocument,
  documentUsage,
  findDocument,
  findDocumentsByIds,
  findJob,
  listCollections,
  listDocuments,
  searchDocuments,
  upsertDocuments,
  type KnowledgeDocumentInput,
} from '../../store/index.js';
import { DAY_MS } from '../../util/clock.js';
import { uuidv7 } from '../../util/ids.js';
import { jsonByteLength } from '../../util/json.js';
import { auditStreamRead, phiPathsOf } from '../phi.js';
import { idParams, phiMaskedProperty, phiQuery, responses, uuid, type PhiQuery } from '../schemas.js';

const L = KNOWLEDGE_LIMITS;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableString = { type: ['string', 'null'] } as const;

const documentFields = {
  externalId: { type: 'string', minLength: 1, maxLength: L.externalIdChars },
  type: { type: 'string', minLength: 1, maxLength: L.typeChars },
  title: { type: 'string', minLength: 1, maxLength: L.titleChars },
  text: { type: 'string', minLength: 1, maxLength: L.textChars },
  condition: { type: ['string', 'null'], maxLength: L.conditionChars },
  action: { type: ['string', 'null'], maxLength: L.actionChars },
  tags: { type: 'array', maxItems: L.tags, uniqueItems: true, items: { type: 'string', pattern: TAG_PATTERN } },
  // Its size (16 KiB of JSON) is checked in the handler.
  metadata: { type: 'object' },
} as const;

const documentInput = { type: 'object', additionalProperties: false, required: ['externalId', 'title', 'text'], properties: documentFields } as const;

/** One document, or `{ documents: [...] }`: every field's limit is checked here, so a 400 names `/body/documents/3/title`. */
const upsertBody = {
  type: 'object',
  additionalProperties: false,
  properties: { ...documentFields, documents: { type: 'array', minItems: 1, maxItems: L.documentsPerRequest, items: documentInput } },
} as const;

type DocumentBody = { [K in keyof typeof documentFields]?: unknown } & { documents?: Record<string, unknown>[] };

const collectionParams = {
  type: 'object',
  additionalProperties: false,
  required: ['collection'],
  properties: { collection: { type: 'string', pattern: COLLECTION_PATTERN } },
} as const;

const documentParams = {
  type: 'object',
  additionalProperties: false,
  required: ['collection', 'externalId'],
  properties: { collection: { type: 'string', pattern: COLLECTION_PATTERN }, externalId: { type: 'string', minLength: 1, maxLength: L.externalIdChars } },
} as const;

const documentSchema = {
  $id: 'KnowledgeDocument',
  type: 'object',
  properties: {
    id: uuid,
    collection: { type: 'string' },
    externalId: { type: 'string' },
    type: { type: 'string' },
    title: { type: 'string' },
    text: { type: 'string' },
    condition: nullableString,
    action: nullableString,
    tags: { type: 'array', items: { type: 'string' } },
    metadata: { type: 'object', additionalProperties: true },
    createdAt: dateTime,
    updatedAt: dateTime,
  },
  required: ['id', 'collection', 'externalId', 'type', 'title', 'text', 'tags', 'metadata', 'createdAt', 'updatedAt'],
} as const;

const retrievalSchema = {
  type: 'object',
  properties: {
    id: uuid,
    stepPath: { type: 'string' },
    collection: { type: 'string' },
    query: { type: 'string' },
    tookMs: { type: 'integer' },
    count: { type: 'integer' },
    averageScore: { type: ['number', 'null'] },
    createdAt: dateTime,
    documents: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          rank: { type: 'integer' },
          score: { type: 'number' },
          documentId: uuid,
          externalId: nullableString,
          type: nullableString,
          title: nullableString,
          deleted: { type: 'boolean' },
          used: { type: 'boolean' },
          usedAt: { type: ['string', 'null'], format: 'date-time' },
          usedByPath: nullableString,
          usedReason: nullableString,
        },
      },
    },
  },
} as const;

/** The paging cursor of a collection's documents: the last external id seen, opaque to clients. */
function encodeDocumentCursor(externalId: string | null): string | null {
  return externalId === null ? null : Buffer.from(JSON.stringify({ v: 1, e: externalId })).toString('base64url');
}

function decodeDocumentCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === '') return null;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: unknown; e?: unknown };
    if (parsed.v === 1 && typeof parsed.e === 'string') return parsed.e;
  } catch {
    // not ours: the same error below
  }
  throw new ValidationError('/querystring/cursor is not a cursor this API returned', { path: '/querystring/cursor' });
}

/** The documents of a POST, defaults filled in; a 400 names the field the schema cannot check (required, size, duplicates). */
function documentsOf(body: DocumentBody): KnowledgeDocumentInput[] {
  const single = Object.keys(body).filter((k) => k !== 'documents');
  if (body.documents !== undefined && single.length > 0) {
    throw new ValidationError(`/body has documents and /body/${single[0]}: send one document, or { documents: [...] } alone`, { path: `/body/${single[0]}` });
  }
  const list = body.documents ?? [body as Record<string, unknown>];
  const prefix = body.documents !== undefined ? '/body/documents/' : '/body';
  const seen = new Map<string, number>();
  return list.map((d, i) => {
    const at = body.documents !== undefined ? `${prefix}${i}` : prefix;
    for (const field of ['externalId', 'title', 'text']) {
      if (d[field] === undefined) throw new ValidationError(`${at} must have required property '${field}'`, { path: `${at}/${field}` });
    }
    const externalId = d.externalId as string;
    const earlier = seen.get(externalId);
    if (earlier !== undefined) {
      throw new ValidationError(`${at}/externalId "${externalId}" is also at ${prefix}${earlier}: each document once per request`, { path: `${at}/externalId` });
    }
    seen.set(externalId, i);
    const metadata = (d.metadata ?? {}) as Record<string, unknown>;
    const bytes = jsonByteLength(metadata);
    if (bytes > L.metadataBytes) {
      throw new ValidationError(`${at}/metadata is ${bytes} bytes of JSON; the limit is ${L.metadataBytes}`, { path: `${at}/metadata`, limit: L.metadataBytes, bytes });
    }
    return {
      externalId,
      type: (d.type as string | undefined) ?? 'document',
      title: d.title as string,
      text: d.text as string,
      condition: (d.condition as string | null | undefined) ?? null,
      action: (d.action as string | null | undefined) ?? null,
      tags: (d.tags as string[] | undefined) ?? [],
      metadata,
    };
  });
}

/** `?tags=a,b`: every tag must be on a document. */
function parseTags(tags: string | undefined): string[] {
  if (tags === undefined || tags === '') return [];
  const list = [...new Set(tags.split(',').map((t) => t.trim()).filter((t) => t !== ''))];
  const pattern = new RegExp(TAG_PATTERN);
  const bad = list.find((t) => !pattern.test(t));
  if (bad !== undefined) throw new ValidationError(`/querystring/tags: "${bad}" is not a tag (${TAG_PATTERN})`, { path: '/querystring/tags', pattern: TAG_PATTERN });
  if (list.length > L.tags) throw new ValidationError(`/querystring/tags names ${list.length} tags; the limit is ${L.tags}`, { path: '/querystring/tags', limit: L.tags });
  return list;
}

/** Analytics ranges are read from daily rows; beyond a year a request is a mistake more often than a report. */
const MAX_ANALYTICS_DAYS = 366;

/** Knowledge collections (documents, search, analytics) and a job's retrieval record. */
export function knowledgeRoutes(app: FastifyInstance, db: Db, blobs: BlobStore | undefined): void {
  app.addSchema(documentSchema);

  app.post<{ Params: { collection: string }; Body: DocumentBody }>(
    '/v1/knowledge/:collection/documents',
    {
      config: { action: 'knowledge.manage' },
      schema: {
        tags: ['knowledge'],
        summary: `Add or replace documents by externalId: one document, or { documents: [...] } (up to ${L.documentsPerRequest})`,
        params: collectionParams,
        body: upsertBody,
        response: responses({
          200: {
            type: 'object',
            properties: {
              created: { type: 'integer' },
              updated: { type: 'integer' },
              items: { type: 'array', items: { type: 'object', properties: { id: uuid, externalId: { type: 'string' }, created: { type: 'boolean' } } } },
            },
          },
        }),
      },
    },
    async (req) => {
      const docs = documentsOf(req.body);
      const items = await upsertDocuments(db, req.principal.organizationId, req.params.collection, docs.map((d) => ({ ...d, id: uuidv7() })));
      const created = items.filter((i) => i.created).length;
      return { created, updated: items.length - created, items };
    },
  );

  app.get<{ Params: { collection: string }; Querystring: { limit: number; cursor?: string } }>(
    '/v1/knowledge/:collection/documents',
    {
      config: { action: 'knowledge.read' },
      schema: {
        tags: ['knowledge'],
        summary: "A page of the collection's documents in externalId order",
        params: collectionParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }, cursor: { type: 'string', maxLength: 400 } },
        },
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'KnowledgeDocument#' } }, nextCursor: nullableString } } }),
      },
    },
    async (req) => {
      const page = await listDocuments(db, req.principal.organizationId, req.params.collection, {
        afterExternalId: decodeDocumentCursor(req.query.cursor),
        limit: req.query.limit,
      });
      return { items: page.items.map(documentView), nextCursor: encodeDocumentCursor(page.nextAfter) };
    },
  );

  app.get<{ Params: { collection: string; externalId: string } }>(
    '/v1/knowledge/:collection/documents/:externalId',
    {
      config: { action: 'knowledge.read' },
      schema: { tags: ['knowledge'], summary: 'One document by its externalId', params: documentParams, response: responses({ 200: { $ref: 'KnowledgeDocument#' } }) },
    },
    async (req) => {
      const doc = await findDocument(db, req.principal.organizationId, req.params.collection, req.params.externalId);
      if (!doc) throw new NotFoundError('document', `${req.params.collection}/${req.params.externalId}`);
      return documentView(doc);
    },
  );

  app.delete<{ Params: { collection: string; externalId: string } }>(
    '/v1/knowledge/:collection/documents/:externalId',
    {
      config: { action: 'knowledge.manage' },
      schema: {
        tags: ['knowledge'],
        summary: 'Delete a document (retrievals that returned it keep their record and show it as deleted)',
        params: documentParams,
        response: responses({ 204: { type: 'null' } }),
      },
    },
    async (req, reply) => {
      if (!(await deleteDocument(db, req.principal.organizationId, req.params.collection, req.params.externalId))) {
        throw new NotFoundError('document', `${req.params.collection}/${req.params.externalId}`);
      }
      return reply.status(204).send();
    },
  );

  app.get(
    '/v1/knowledge',
    {
      config: { action: 'knowledge.read' },
      schema: {
        tags: ['knowledge'],
        summary: "The organization's collections with their document counts",
        response: responses({
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: { type: 'object', properties: { collection: { type: 'string' }, documents: { type: 'integer' }, updatedAt: dateTime } } },
            },
          },
        }),
      },
    },
    async (req) => ({ items: await listCollections(db, req.principal.organizationId) }),
  );

  app.get<{ Params: { collection: string }; Querystring: { q: string; tags?: string; limit: number; match: RetrievalMatch } }>(
    '/v1/knowledge/:collection/search',
    {
      config: { action: 'knowledge.read' },
      schema: {
        tags: ['knowledge'],
        summary: 'Rank the collection against a query as a retrieve step does (nothing is recorded)',
        params: collectionParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['q'],
          properties: {
            q: { type: 'string', minLength: 1, maxLength: L.queryChars, description: 'websearch syntax: "quoted phrase", or, -word' },
            tags: { type: 'string', maxLength: 2_200, description: 'comma-separated; every tag must be on a document' },
            limit: { type: 'integer', minimum: 1, maximum: L.maxTopK, default: L.defaultTopK },
            match: { enum: [...RETRIEVAL_MATCHES], default: 'all', description: 'all: every word (or the search syntax); any: any word, more words ranking higher' },
          },
        },
        response: responses({
          200: {
            type: 'object',
            properties: {
              items: {
                type: 'array',
                items: { type: 'object', properties: { ...documentSchema.properties, score: { type: 'number' }, rank: { type: 'integer' } } },
              },
            },
          },
        }),
      },
    },
    async (req) => {
      const hits = await searchDocuments(db, req.principal.organizationId, req.params.collection, {
        query: req.query.q,
        tags: parseTags(req.query.tags),
        limit: req.query.limit,
        match: req.query.match,
      });
      return { items: hits.map((h) => ({ ...documentView(h), score: h.score, rank: h.rank })) };
    },
  );

  app.get<{ Params: { collection: string }; Querystring: { from?: string; to?: string; workflowId?: string; limit: number } }>(
    '/v1/knowledge/:collection/analytics',
    {
      config: { action: 'knowledge.read', reads: 'replica' },
      schema: {
        tags: ['knowledge'],
        summary: 'Per document: how often runs retrieved it and used it, in total and per workflow (days overlapping [from, to), UTC)',
        params: collectionParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: { ...dateTime, description: 'default: 30 days before to' },
            to: { ...dateTime, description: 'default: now' },
            workflowId: uuid,
            limit: { type: 'integer', minimum: 1, maximum: 1_000, default: 100, description: 'the most retrieved documents first' },
          },
        },
        response: responses({
          200: {
            type: 'object',
            properties: {
              from: dateTime,
              to: dateTime,
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    documentId: uuid,
                    externalId: nullableString,
                    title: nullableString,
                    retrieved: { type: 'integer' },
                    used: { type: 'integer' },
                    workflows: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: { workflowId: uuid, workflowName: nullableString, retrieved: { type: 'integer' }, used: { type: 'integer' } },
                      },
                    },
                  },
                },
              },
            },
          },
        }),
      },
    },
    async (req) => {
      const to = req.query.to !== undefined ? new Date(req.query.to) : new Date();
      const from = req.query.from !== undefined ? new Date(req.query.from) : new Date(to.getTime() - 30 * DAY_MS);
      if (from >= to) throw new ValidationError('/querystring/from must be before to', { path: '/querystring/from' });
      if (to.getTime() - from.getTime() > MAX_ANALYTICS_DAYS * DAY_MS) {
        throw new ValidationError(`/querystring/from: the range is at most ${MAX_ANALYTICS_DAYS} days`, { path: '/querystring/from', limit: MAX_ANALYTICS_DAYS });
      }
      const items = await documentUsage(db, req.principal.organizationId, req.params.collection, {
        from,
        to,
        workflowId: req.query.workflowId ?? null,
        limit: req.query.limit,
      });
      return { from, to, items };
    },
  );

  app.get<{ Params: { id: string }; Querystring: PhiQuery }>(
    '/v1/jobs/:id/retrievals',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['knowledge'],
        summary: "A job's knowledge retrievals: each with its documents by rank, score and used mark (read from the archive once the job's stream is archived)",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: phiQuery },
        response: responses({
          200: { type: 'object', properties: { items: { type: 'array', items: retrievalSchema }, archived: { type: 'boolean' }, ...phiMaskedProperty } },
        }),
      },
    },
    async (req) => {
      const organizationId = req.principal.organizationId;
      const job = await findJob(db, organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      const { items, archived } = await readJobRetrievals(db, blobs, organizationId, job.id);
      const docs = await findDocumentsByIds(db, organizationId, items.flatMap((r) => r.documents.map((d) => d.documentId)));
      // The query and reasons are rendered from the run's data: masked, or an audited read, for a PHI workflow.
      const phi = declaresPhi((await phiPathsOf(db, organizationId, [job])).get(job.id));
      const mask = phi && req.query.phi === 'mask';
      if (phi && !mask) await auditStreamRead(db, req, job, items.length);
      return { items: items.map((r) => retrievalView(r, docs, mask)), archived, ...(mask ? { phiMasked: true } : {}) };
    },
  );
}
