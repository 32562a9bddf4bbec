import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { BlobStore } from '../../blob/index.js';
import type { Db } from '../../db/index.js';
import { NotFoundError, UnavailableError } from '../../errors/index.js';
import { findJob, findScreenshot, listJobScreenshots, type Screenshot } from '../../store/index.js';
import { idParams, responses, uuid } from '../schemas.js';
import { auditScreenshotRead } from '../phi.js';
import { SEALED_TRACE_CONTENT_TYPE, traceSealedFor } from '../../engine/artifacts.js';
import type { KeyRing } from '../../security/crypto.js';
import { keyRingSealer } from '../../security/sealer.js';

/** Screenshot metadata → API JSON; `contentUrl` streams the bytes through the API. */
export function screenshotView(s: Screenshot) {
  return {
    id: s.id,
    jobId: s.jobId,
    stepIndex: s.stepIndex,
    streamSeq: s.streamSeq,
    type: s.type,
    name: s.name,
    contentType: s.contentType,
    width: s.width,
    height: s.height,
    bytes: s.bytes,
    sha256: s.sha256,
    capturedAt: s.capturedAt,
    retainUntil: s.retainUntil,
    contentUrl: `/v1/screenshots/${s.id}`,
  };
}

export const screenshotSchema = {
  $id: 'Screenshot',
  type: 'object',
  properties: {
    id: uuid,
    jobId: uuid,
    stepIndex: { type: ['integer', 'null'] },
    streamSeq: { type: ['integer', 'null'] },
    type: { type: 'string' },
    name: { type: ['string', 'null'] },
    contentType: { type: 'string' },
    width: { type: ['integer', 'null'] },
    height: { type: ['integer', 'null'] },
    bytes: { type: 'integer' },
    sha256: { type: 'string' },
    capturedAt: { type: 'string', format: 'date-time' },
    retainUntil: { type: ['string', 'null'], format: 'date-time' },
    contentUrl: { type: 'string' },
  },
  required: ['id', 'jobId', 'type', 'contentType', 'bytes', 'sha256', 'capturedAt', 'contentUrl'],
} as const;

function requireBlobs(blobs: BlobStore | undefined): BlobStore {
  if (!blobs) throw new UnavailableError('no blob store is configured on this server');
  return blobs;
}

/** A live screenshot of the caller's organization; another organization's, or a deleted one, is 404. */
async function liveScreenshot(db: Db, organizationId: string, id: string): Promise<Screenshot> {
  const s = await findScreenshot(db, organizationId, id);
  if (!s || s.deletedAt !== null) throw new NotFoundError('screenshot', id);
  return s;
}

/** Record a PHI read when the screenshot's job belongs to a workflow that declares PHI (api/phi.ts). */
async function auditRead(db: Db, req: FastifyRequest, s: Screenshot): Promise<void> {
  const job = await findJob(db, req.principal.organizationId, s.jobId);
  if (job) await auditScreenshotRead(db, req, job, s.id);
}

export function screenshotRoutes(app: FastifyInstance, db: Db, blobs: BlobStore | undefined, keyRing: KeyRing | null): void {
  app.addSchema(screenshotSchema);

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id/screenshots',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['screenshots'],
        summary: "A job's screenshots and artifacts in capture order (metadata; bytes at contentUrl)",
        params: idParams,
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Screenshot#' } } } } }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      const items = await listJobScreenshots(db, req.principal.organizationId, job.id);
      return { items: items.map(screenshotView) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/screenshots/:id',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['screenshots'],
        summary: "A screenshot's bytes, with its content type",
        description: `A browser trace (content type ${SEALED_TRACE_CONTENT_TYPE}) is stored sealed with the key ring: it is opened here and served as application/zip, for Playwright's trace viewer.`,
        params: idParams,
        response: responses({}),
      },
    },
    async (req, reply) => {
      const s = await liveScreenshot(db, req.principal.organizationId, req.params.id);
      if (s.contentType === SEALED_TRACE_CONTENT_TYPE) {
        if (!keyRing) throw new UnavailableError('browser traces are sealed with the key ring, and STEPWISE_ENCRYPTION_KEYS is not set on this server');
        const zip = keyRingSealer(keyRing).openBytes(await requireBlobs(blobs).get(s.blobKey), traceSealedFor(s.organizationId, s.jobId));
        await auditRead(db, req, s);
        return reply.type('application/zip').header('content-disposition', `attachment; filename="trace-${s.id}.zip"`).send(zip);
      }
      const stream = await requireBlobs(blobs).getStream(s.blobKey);
      await auditRead(db, req, s);
      return reply
        .type(s.contentType)
        .header('content-length', s.bytes)
        .header('etag', `"${s.sha256}"`)
        .send(stream);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { expiresIn: number } }>(
    '/v1/screenshots/:id/url',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['screenshots'],
        summary: 'A signed, expiring URL that reads the bytes straight from blob storage (url is null when the backend has none: use contentUrl)',
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { expiresIn: { type: 'integer', minimum: 60, maximum: 86_400, default: 900, description: 'seconds' } },
        },
        response: responses({
          200: {
            type: 'object',
            properties: {
              url: { type: ['string', 'null'] },
              expiresAt: { type: ['string', 'null'], format: 'date-time' },
              contentUrl: { type: 'string' },
            },
          },
        }),
      },
    },
    async (req) => {
      const s = await liveScreenshot(db, req.principal.organizationId, req.params.id);
      // Blob storage holds a trace sealed: only contentUrl can serve it readable.
      const url = s.contentType === SEALED_TRACE_CONTENT_TYPE ? null : await requireBlobs(blobs).signedReadUrl(s.blobKey, req.query.expiresIn);
      await auditRead(db, req, s);
      return {
        url,
        expiresAt: url === null ? null : new Date(Date.now() + req.query.expiresIn * 1000),
        contentUrl: `/v1/screenshots/${s.id}`,
      };
    },
  );
}
