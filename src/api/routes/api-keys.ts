import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import { NotFoundError, ValidationError } from '../../errors/index.js';
import { assertAllowed, assertCanGrant, createApiKey, isAllowed, minRole, ROLES } from '../../security/index.js';
import { findApiKey, findUser, listApiKeys, revokeApiKey, type ApiKey, type Role } from '../../store/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { idParams, pageQuery, responses, uuid } from '../schemas.js';

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

const keySchema = {
  type: 'object',
  properties: {
    id: uuid,
    name: { type: 'string' },
    prefix: { type: 'string' },
    userId: { type: ['string', 'null'] },
    role: { type: 'string' },
    createdAt: dateTime,
    expiresAt: nullableDateTime,
    revokedAt: nullableDateTime,
  },
} as const;

/** Never the hash; the prefix is what identifies a key to its holder. */
function keyView(k: ApiKey) {
  return { id: k.id, name: k.name, prefix: k.prefix, userId: k.userId, role: k.role, createdAt: k.createdAt, expiresAt: k.expiresAt, revokedAt: k.revokedAt };
}

/** Acting on another user's keys needs keys.manage (OWNER); one's own need only keys.self. */
function assertMayActFor(req: FastifyRequest, userId: string | null): void {
  if (userId !== req.principal.userId) assertAllowed(req.principal.role, 'keys.manage');
}

/**
 * API keys. Anyone may mint keys for themselves, at most at their own
 * (effective) role; OWNER may mint, list and revoke anyone's. The key is
 * returned once, at creation.
 */
export function apiKeyRoutes(app: FastifyInstance, db: Db): void {
  const tags = ['api-keys'];

  app.post<{ Body: { name?: string; userId?: string; role?: Role; expiresAt?: string } }>(
    '/v1/api-keys',
    {
      config: { action: 'keys.self' },
      schema: {
        tags,
        summary: 'Create an API key (returned once); at most the caller\'s role and the user\'s role',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
            userId: uuid,
            role: { type: 'string', enum: ROLES },
            expiresAt: dateTime,
          },
        },
        response: responses({ 201: { ...keySchema, properties: { ...keySchema.properties, key: { type: 'string' } } } }),
      },
    },
    async (req, reply) => {
      const p = req.principal;
      const userId = req.body.userId ?? p.userId;
      if (userId === null) throw new ValidationError('/body/userId is required: this key belongs to no user', { path: '/body/userId' });
      assertMayActFor(req, userId);
      const user = await findUser(db, p.organizationId, userId);
      if (!user) throw new NotFoundError('user', userId);
      const role = req.body.role ?? minRole(p.role, user.role);
      assertCanGrant(p.role, role, 'create a key');
      let expiresAt: Date | null = null;
      if (req.body.expiresAt !== undefined) {
        expiresAt = new Date(req.body.expiresAt);
        if (!(expiresAt.getTime() > Date.now())) {
          throw new ValidationError('/body/expiresAt must be in the future', { path: '/body/expiresAt' });
        }
      }
      const created = await createApiKey(db, p.organizationId, { name: req.body.name ?? 'API key', userId, role, expiresAt });
      const key = await findApiKey(db, p.organizationId, created.id);
      return reply.status(201).send({ ...keyView(key!), key: created.key });
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string; userId?: string } }>(
    '/v1/api-keys',
    {
      config: { action: 'keys.self' },
      schema: {
        tags,
        summary: "List API keys (prefix only): one's own, or anyone's for OWNER",
        querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery, userId: uuid } },
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: keySchema }, nextCursor: { type: ['string', 'null'] } } } }),
      },
    },
    async (req) => {
      const p = req.principal;
      const all = isAllowed(p.role, 'keys.manage');
      if (req.query.userId !== undefined) assertMayActFor(req, req.query.userId);
      const userId = req.query.userId ?? (all ? undefined : (p.userId ?? undefined));
      const page = await listApiKeys(db, p.organizationId, { after: decodeCursor(req.query.cursor), limit: req.query.limit, userId });
      return { items: page.items.map(keyView), nextCursor: encodeCursor(page.nextCursor) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/api-keys/:id',
    {
      config: { action: 'keys.self' },
      schema: { tags, summary: 'Revoke an API key (at once; revoking twice is harmless)', params: idParams, response: responses({ 200: keySchema }) },
    },
    async (req) => {
      const p = req.principal;
      const key = await findApiKey(db, p.organizationId, req.params.id);
      if (!key) throw new NotFoundError('API key', req.params.id);
      assertMayActFor(req, key.userId);
      return keyView((await revokeApiKey(db, p.organizationId, key.id))!);
    },
  );
}
