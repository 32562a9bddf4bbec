import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../../errors/index.js';
import { workflowView } from '../../read/index.js';
import { isAllowed } from '../../security/permissions.js';
import {
  deleteOwnTemplate,
  findTemplate,
  insertCommunityTemplate,
  rateTemplate,
  searchTemplates,
  TEMPLATE_CATEGORIES,
  TEMPLATE_DIFFICULTIES,
  TEMPLATE_SORTS,
  updateOwnTemplate,
  type Template,
  type TemplateCategory,
  type TemplateChanges,
  type TemplateContent,
  type TemplateSort,
} from '../../store/index.js';
import { checkCommunityTemplate, instantiateTemplate } from '../../templates/index.js';
import { isPlainObject } from '../../util/json.js';
import { anyJson, idParams, responses, uuid } from '../schemas.js';

const dateTime = { type: 'string', format: 'date-time' } as const;
/** A credential provider name as integrations list them (`openai`, `smtp`, `postgres`, `portal_login`). */
const provider = { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,99}$' } as const;
const providers = { type: 'array', maxItems: 20, uniqueItems: true, items: provider } as const;

const templateProperties = {
  id: uuid,
  slug: { type: ['string', 'null'] },
  name: { type: 'string' },
  description: { type: 'string' },
  category: { type: 'string' },
  tags: { type: 'array', items: { type: 'string' } },
  difficulty: { type: 'string' },
  estimatedMinutesSaved: { type: 'integer' },
  author: { type: 'string', enum: ['OFFICIAL', 'COMMUNITY'] },
  isPublic: { type: 'boolean' },
  own: { type: 'boolean', description: "true for the caller's organization's own templates" },
  popularity: { type: 'integer', description: 'workflows made from it' },
  rating: { type: 'number', description: 'average of the ratings, 0 when none' },
  ratingCount: { type: 'integer' },
  requiredIntegrations: { type: 'array', items: { type: 'string' } },
  optionalIntegrations: { type: 'array', items: { type: 'string' } },
  settingsSchema: anyJson,
  createdAt: dateTime,
  updatedAt: dateTime,
} as const;

const templateSchema = {
  type: 'object',
  properties: { ...templateProperties, definition: anyJson },
  required: ['id', 'name', 'category', 'author', 'isPublic', 'definition', 'settingsSchema'],
} as const;

const listItemSchema = {
  type: 'object',
  properties: { ...templateProperties, rank: { type: ['number', 'null'], description: 'ts_rank of the query (null without q)' } },
  required: ['id', 'name', 'category', 'author', 'isPublic', 'settingsSchema'],
} as const;

const content = {
  name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
  description: { type: 'string', maxLength: 4000 },
  category: { type: 'string', enum: [...TEMPLATE_CATEGORIES] },
  tags: { type: 'array', maxItems: 20, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 50, pattern: '^[A-Za-z0-9][A-Za-z0-9 _.-]*$' } },
  difficulty: { type: 'string', enum: [...TEMPLATE_DIFFICULTIES] },
  estimatedMinutesSaved: { type: 'integer', minimum: 0, maximum: 100_000 },
  // Checked whole when instantiated (placeholders filled); here its shape and placeholders.
  definition: { type: 'object', required: ['steps'], properties: { steps: { type: 'array', minItems: 1 } } },
  requiredIntegrations: providers,
  optionalIntegrations: providers,
  settingsSchema: { type: 'object' },
} as const;

interface ContentBody {
  name: string;
  description?: string;
  category?: TemplateCategory;
  tags?: string[];
  difficulty?: TemplateContent['difficulty'];
  estimatedMinutesSaved?: number;
  definition: Record<string, unknown>;
  requiredIntegrations?: string[];
  optionalIntegrations?: string[];
  settingsSchema?: Record<string, unknown>;
}

interface ListQuery {
  q?: string;
  category?: TemplateCategory;
  integration?: string;
  minRating?: number;
  sort?: TemplateSort;
  limit: number;
  cursor?: string;
}

/** Largest template definition or settings schema, as JSON text (the table's CHECKs are the backstop). */
const MAX_DEFINITION_BYTES = 1024 * 1024;
const MAX_SETTINGS_BYTES = 64 * 1024;
/** Pages reach at most this far into a result (offset paging; the catalogue is hundreds of rows, not millions). */
const MAX_OFFSET = 10_000;

function view(t: Template, organizationId: string) {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    description: t.description,
    category: t.category,
    tags: t.tags,
    difficulty: t.difficulty,
    estimatedMinutesSaved: t.estimatedMinutesSaved,
    author: t.author,
    isPublic: t.isPublic,
    own: t.organizationId === organizationId,
    popularity: t.popularity,
    rating: t.rating,
    ratingCount: t.ratingCount,
    requiredIntegrations: t.requiredIntegrations,
    optionalIntegrations: t.optionalIntegrations,
    settingsSchema: t.settingsSchema,
    definition: t.definition,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}

/**
 * The list's cursor: the offset of the next page, opaque like the other
 * cursors. Offset, not keyset: relevance is a float computed per query, and
 * the catalogue is small enough that an offset costs nothing.
 */
function encodeOffset(offset: number | null): string | null {
  return offset === null ? null : Buffer.from(JSON.stringify({ v: 1, o: offset })).toString('base64url');
}

function decodeOffset(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isPlainObject(parsed) && parsed.v === 1 && Number.isSafeInteger(parsed.o) && Number(parsed.o) >= 0 && Number(parsed.o) <= MAX_OFFSET) {
      return Number(parsed.o);
    }
  } catch {
    // not base64url JSON: the same error below
  }
  throw new ValidationError('/querystring/cursor is not a cursor this API returned', { path: '/querystring/cursor' });
}

function checkSizes(body: { definition?: unknown; settingsSchema?: unknown }): void {
  for (const [field, value, limit] of [
    ['definition', body.definition, MAX_DEFINITION_BYTES],
    ['settingsSchema', body.settingsSchema, MAX_SETTINGS_BYTES],
  ] as const) {
    if (value === undefined) continue;
    const bytes = Buffer.byteLength(JSON.stringify(value));
    if (bytes > limit) throw new ValidationError(`/body/${field} is ${bytes} bytes; the limit is ${limit}`, { path: `/body/${field}`, bytes, limit });
  }
}

/** The template, when the caller's organization owns it; 404 when invisible, 403 when visible but someone else's. */
async function ownTemplate(db: Db, req: FastifyRequest, id: string): Promise<Template> {
  const org = req.principal.organizationId;
  const t = await findTemplate(db, org, id);
  if (!t) throw new NotFoundError('template', id);
  if (t.organizationId !== org) {
    throw new ForbiddenError(`template ${id} is ${t.author === 'OFFICIAL' ? 'an official template' : "another organization's"}: only its own organization may change it`, {
      path: '/params/id',
    });
  }
  return t;
}

/** A public template is seen by every organization: changing or deleting it needs the publish permission (ADMIN). */
function assertMayChange(req: FastifyRequest, t: Template): void {
  if (t.isPublic && !isAllowed(req.principal.role, 'templates.publish')) {
    throw new ForbiddenError(`template ${t.id} is public: changing or deleting it needs templates.publish (ADMIN or above)`, {
      action: 'templates.publish',
      requiredRole: 'ADMIN',
      role: req.principal.role,
    });
  }
}

export function templateRoutes(app: FastifyInstance, db: Db): void {
  app.get<{ Querystring: ListQuery }>(
    '/v1/templates',
    {
      config: { action: 'templates.read' },
      schema: {
        tags: ['templates'],
        summary: 'Search the template library: official, public community and own templates',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            q: { type: 'string', maxLength: 200, description: 'web-search syntax over name, tags (weight A) and description (B)' },
            category: { type: 'string', enum: [...TEMPLATE_CATEGORIES] },
            integration: { ...provider, description: 'a credential provider the template requires or can use' },
            minRating: { type: 'number', minimum: 0, maximum: 5 },
            sort: { type: 'string', enum: [...TEMPLATE_SORTS], description: 'default: relevance with q, else popularity' },
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            cursor: { type: 'string', maxLength: 200 },
          },
        },
        response: responses({
          200: { type: 'object', properties: { items: { type: 'array', items: listItemSchema }, nextCursor: { type: ['string', 'null'] } } },
        }),
      },
    },
    async (req) => {
      const org = req.principal.organizationId;
      const query = req.query;
      const offset = decodeOffset(query.cursor);
      const page = await searchTemplates(db, org, {
        q: query.q,
        category: query.category,
        integration: query.integration,
        minRating: query.minRating,
        sort: query.sort ?? (query.q?.trim() ? 'relevance' : 'popularity'),
        offset,
        limit: query.limit,
      });
      const next = page.nextOffset !== null && page.nextOffset <= MAX_OFFSET ? page.nextOffset : null;
      return {
        items: page.items.map(({ rank, ...t }) => {
          const { definition: _omitted, ...rest } = view(t, org);
          return { ...rest, rank };
        }),
        nextCursor: encodeOffset(next),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/templates/:id',
    {
      config: { action: 'templates.read' },
      schema: { tags: ['templates'], summary: 'A template with its definition and settings schema', params: idParams, response: responses({ 200: templateSchema }) },
    },
    async (req) => {
      const t = await findTemplate(db, req.principal.organizationId, req.params.id);
      if (!t) throw new NotFoundError('template', req.params.id);
      return view(t, req.principal.organizationId);
    },
  );

  app.post<{ Body: ContentBody }>(
    '/v1/templates',
    {
      config: { action: 'templates.manage' },
      schema: {
        tags: ['templates'],
        summary: "Write a COMMUNITY template of the organization (private until published). Placeholders: {\"$config\": \"path\"} and [[config.path]]",
        body: { type: 'object', additionalProperties: false, required: ['name', 'definition'], properties: content },
        response: responses({ 201: templateSchema }),
      },
    },
    async (req, reply) => {
      const b = req.body;
      checkSizes(b);
      const settingsSchema = b.settingsSchema ?? { type: 'object' };
      checkCommunityTemplate(b.definition, settingsSchema);
      const t = await insertCommunityTemplate(
        db,
        req.principal.organizationId,
        {
          name: b.name,
          description: b.description ?? '',
          category: b.category ?? 'CUSTOM',
          tags: b.tags ?? [],
          difficulty: b.difficulty ?? 'BEGINNER',
          estimatedMinutesSaved: b.estimatedMinutesSaved ?? 0,
          definition: b.definition,
          requiredIntegrations: b.requiredIntegrations ?? [],
          optionalIntegrations: b.optionalIntegrations ?? [],
          settingsSchema,
        },
        req.principal.userId,
      );
      return reply.status(201).send(view(t, req.principal.organizationId));
    },
  );

  app.patch<{ Params: { id: string }; Body: Partial<ContentBody> }>(
    '/v1/templates/:id',
    {
      config: { action: 'templates.manage' },
      schema: {
        tags: ['templates'],
        summary: "Change one of the organization's own templates (a public one: ADMIN or above)",
        params: idParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: content },
        response: responses({ 200: templateSchema }),
      },
    },
    async (req) => {
      const org = req.principal.organizationId;
      const current = await ownTemplate(db, req, req.params.id);
      assertMayChange(req, current);
      checkSizes(req.body);
      checkCommunityTemplate(req.body.definition ?? current.definition, req.body.settingsSchema ?? current.settingsSchema);
      const updated = await updateOwnTemplate(db, org, current.id, req.body as TemplateChanges);
      if (!updated) throw new NotFoundError('template', req.params.id);
      return view(updated, org);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/templates/:id',
    {
      config: { action: 'templates.manage' },
      schema: { tags: ['templates'], summary: "Delete one of the organization's own templates (a public one: ADMIN or above)", params: idParams, response: responses({ 204: { type: 'null' } }) },
    },
    async (req, reply) => {
      const current = await ownTemplate(db, req, req.params.id);
      assertMayChange(req, current);
      await deleteOwnTemplate(db, req.principal.organizationId, current.id);
      return reply.status(204).send();
    },
  );

  for (const [suffix, isPublic] of [
    ['publish', true],
    ['unpublish', false],
  ] as const) {
    app.post<{ Params: { id: string } }>(
      `/v1/templates/:id/${suffix}`,
      {
        config: { action: 'templates.publish' },
        schema: {
          tags: ['templates'],
          summary: isPublic ? 'Make one of the organization\'s own templates public: every organization can find and use it' : 'Make a public template private again',
          params: idParams,
          response: responses({ 200: templateSchema }),
        },
      },
      async (req) => {
        const org = req.principal.organizationId;
        const current = await ownTemplate(db, req, req.params.id);
        const updated = await updateOwnTemplate(db, org, current.id, { isPublic });
        if (!updated) throw new NotFoundError('template', req.params.id);
        return view(updated, org);
      },
    );
  }

  app.put<{ Params: { id: string }; Body: { rating: number } }>(
    '/v1/templates/:id/rating',
    {
      config: { action: 'templates.rate' },
      schema: {
        tags: ['templates'],
        summary: "Rate a template 1–5: one rating per user (the key's or session's user); rating again changes it",
        params: idParams,
        body: { type: 'object', additionalProperties: false, required: ['rating'], properties: { rating: { type: 'integer', minimum: 1, maximum: 5 } } },
        response: responses({
          200: {
            type: 'object',
            properties: { templateId: uuid, yours: { type: 'integer' }, rating: { type: 'number' }, ratingCount: { type: 'integer' } },
            required: ['templateId', 'yours', 'rating', 'ratingCount'],
          },
        }),
      },
    },
    async (req) => {
      const org = req.principal.organizationId;
      const userId = req.principal.userId;
      if (userId === null) throw new ForbiddenError('this key belongs to no user, so it cannot rate', {});
      const t = await findTemplate(db, org, req.params.id);
      if (!t) throw new NotFoundError('template', req.params.id);
      const r = await rateTemplate(db, org, t.id, userId, req.body.rating);
      return { templateId: t.id, yours: r.yours, rating: r.rating, ratingCount: r.ratingCount };
    },
  );

  app.post<{ Params: { id: string }; Body: { name: string; description?: string | null; config?: Record<string, unknown> } }>(
    '/v1/templates/:id/instantiate',
    {
      config: { action: 'workflows.manage' },
      schema: {
        tags: ['templates'],
        summary:
          "Create a workflow from a template: config is checked against its settings schema and filled into the definition; " +
          'the workflow is validated and counted against the plan as POST /v1/workflows. missingIntegrations lists required providers with no credential yet',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
            description: { type: ['string', 'null'], maxLength: 2000 },
            config: { type: 'object' },
          },
        },
        response: responses({
          201: {
            type: 'object',
            properties: {
              templateId: uuid,
              workflow: { $ref: 'Workflow#' },
              config: anyJson,
              missingIntegrations: { type: 'array', items: { type: 'string' } },
            },
            required: ['templateId', 'workflow', 'config', 'missingIntegrations'],
          },
        }),
      },
    },
    async (req, reply) => {
      const made = await instantiateTemplate(db, req.principal.organizationId, req.params.id, req.body);
      return reply.status(201).send({
        templateId: req.params.id,
        workflow: workflowView(made.workflow),
        config: made.config,
        missingIntegrations: made.missingIntegrations,
      });
    },
  );
}
