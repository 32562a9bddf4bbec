import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { ConflictError, ForbiddenError, NotFoundError } from '../../errors/index.js';
import { roleAtLeast } from '../../security/permissions.js';
import {
  countOwnSavedViews,
  createSavedView,
  deleteSavedView,
  findSavedView,
  listSavedViews,
  SAVED_VIEW_PAGES,
  type SavedView,
  type SavedViewPage,
} from '../../store/index.js';
import { idParams, responses, uuid } from '../schemas.js';

/** Views one user may own: enough for any dashboard, and a bound on what one key can make the table hold. */
export const MAX_SAVED_VIEWS_PER_USER = 100;

const savedViewSchema = {
  type: 'object',
  properties: {
    id: uuid,
    name: { type: 'string' },
    page: { type: 'string', enum: [...SAVED_VIEW_PAGES] },
    query: { type: 'string' },
    shared: { type: 'boolean' },
    ownerUserId: uuid,
    mine: { type: 'boolean' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

function savedViewView(view: SavedView, userId: string | null) {
  return {
    id: view.id,
    name: view.name,
    page: view.page,
    query: view.query,
    shared: view.shared,
    ownerUserId: view.ownerUserId,
    mine: view.ownerUserId === userId,
    createdAt: view.createdAt.toISOString(),
  };
}

/**
 * Saved views of the dashboard's runs list. Anyone who may read jobs may
 * keep views: a personal one is seen by its owner only (another user's
 * answers 404, as if it did not exist), a shared one by the whole
 * organization; a shared view made by someone else is deleted by ADMIN and
 * above only.
 */
export function viewRoutes(app: FastifyInstance, db: Db): void {
  app.get<{ Querystring: { page: SavedViewPage } }>(
    '/v1/views',
    {
      // On the primary, not the read replica: Atlas lists the views again right after saving or
      // deleting one, and a replica a few milliseconds behind would show the list before that change.
      config: { action: 'jobs.read' },
      schema: {
        tags: ['views'],
        summary: "Saved views of a dashboard page: the caller's own and the organization's shared ones",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { page: { type: 'string', enum: [...SAVED_VIEW_PAGES], default: 'runs' } },
        },
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: savedViewSchema } } } }),
      },
    },
    async (req) => {
      const { organizationId, userId } = req.principal;
      const views = await listSavedViews(db, organizationId, userId, req.query.page);
      return { items: views.map((v) => savedViewView(v, userId)) };
    },
  );

  app.post<{ Body: { name: string; page: SavedViewPage; query: string; shared?: boolean } }>(
    '/v1/views',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['views'],
        summary: 'Save a view: a name for a query string of a dashboard page, personal or shared with the organization',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'page', 'query'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 100, pattern: '\\S' },
            page: { type: 'string', enum: [...SAVED_VIEW_PAGES] },
            query: { type: 'string', maxLength: 2000, description: 'the URL query string of the page (without the leading ?)' },
            shared: { type: 'boolean', default: false },
          },
        },
        response: responses({ 201: savedViewSchema }),
      },
    },
    async (req, reply) => {
      const { organizationId, userId } = req.principal;
      if (!userId) throw new ForbiddenError('saved views belong to a user; this credential has none');
      const own = await countOwnSavedViews(db, organizationId, userId);
      if (own >= MAX_SAVED_VIEWS_PER_USER) {
        throw new ConflictError(`a user keeps at most ${MAX_SAVED_VIEWS_PER_USER} saved views; delete one first`, {
          path: '/body',
          limit: MAX_SAVED_VIEWS_PER_USER,
        });
      }
      const view = await createSavedView(db, organizationId, {
        ownerUserId: userId,
        name: req.body.name,
        page: req.body.page,
        query: req.body.query,
        shared: req.body.shared ?? false,
      });
      return reply.status(201).send(savedViewView(view, userId));
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/views/:id',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['views'],
        summary: 'Delete a saved view (one\'s own; a shared view of someone else: ADMIN and above)',
        params: idParams,
        response: responses({ 204: { type: 'null' } }),
      },
    },
    async (req, reply) => {
      const { organizationId, userId, role } = req.principal;
      const view = await findSavedView(db, organizationId, req.params.id);
      const mine = view !== null && view.ownerUserId === userId;
      // Another user's personal view is invisible: the same 404 as a missing one.
      if (!view || (!mine && !view.shared)) throw new NotFoundError('view', req.params.id);
      if (!mine && !roleAtLeast(role, 'ADMIN')) {
        throw new ForbiddenError("deleting a shared view someone else made needs the ADMIN role", { required: 'ADMIN' });
      }
      await deleteSavedView(db, organizationId, view.id);
      return reply.status(204).send();
    },
  );
}
