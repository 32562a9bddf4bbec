import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { NotFoundError } from '../../errors/index.js';
import { assertCanGrant, inviteUser, ROLES } from '../../security/index.js';
import { createUser, deleteUser, findUser, listUsers, updateUser, type Role, type User, type UserChanges } from '../../store/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { actorName } from '../phi.js';
import { idParams, pageQuery, responses, uuid } from '../schemas.js';

const role = { type: 'string', enum: ROLES } as const;
// Deliberately loose: one @, no spaces, 254 characters (RFC 5321's path limit). Deliverability is not our check.
const email = { type: 'string', minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' } as const;
const name = { type: ['string', 'null'], minLength: 1, maxLength: 200 } as const;

const userSchema = {
  type: 'object',
  properties: {
    id: uuid,
    email: { type: 'string' },
    name: { type: ['string', 'null'] },
    role: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    disabledAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

function userView(u: User) {
  return { id: u.id, email: u.email, name: u.name, role: u.role, createdAt: u.createdAt, updatedAt: u.updatedAt, disabledAt: u.disabledAt };
}

/** Users of the caller's organization. OWNER manages; ADMIN reads. */
export function userRoutes(app: FastifyInstance, db: Db): void {
  const tags = ['users'];

  app.post<{ Body: { email: string; name?: string | null; role: Role } }>(
    '/v1/users',
    {
      config: { action: 'users.manage' },
      schema: {
        tags,
        summary: 'Create a user (no role above the caller\'s)',
        body: { type: 'object', additionalProperties: false, required: ['email', 'role'], properties: { email, name, role } },
        response: responses({ 201: userSchema }),
      },
    },
    async (req, reply) => {
      assertCanGrant(req.principal.role, req.body.role, 'create a user');
      const user = await createUser(db, req.principal.organizationId, req.body);
      return reply.status(201).send(userView(user));
    },
  );

  app.post<{ Body: { email: string; name?: string | null; role: Role } }>(
    '/v1/invitations',
    {
      config: { action: 'users.invite' },
      schema: {
        tags,
        summary: "Invite a new user: create them (no role above the caller's) and issue their single-use link (72 h) to set a password",
        description: 'What an ADMIN may do of user management: bring someone in at or below their own role. Changing roles, disabling and deleting stay with OWNER.',
        body: { type: 'object', additionalProperties: false, required: ['email', 'role'], properties: { email, name, role } },
        response: responses({
          201: { type: 'object', properties: { user: userSchema, token: { type: 'string' }, path: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' } } },
        }),
      },
    },
    async (req, reply) => {
      assertCanGrant(req.principal.role, req.body.role, 'invite a user');
      // One request transaction: a user whose invitation could not be issued is not created either.
      const user = await createUser(db, req.principal.organizationId, req.body);
      const invitation = await inviteUser(db, req.principal.organizationId, user.id, actorName(req));
      return reply.status(201).send({ user: userView(user), ...invitation });
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/users',
    {
      config: { action: 'users.read' },
      schema: {
        tags,
        summary: 'List users, newest first',
        querystring: { type: 'object', additionalProperties: false, properties: pageQuery },
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: userSchema }, nextCursor: { type: ['string', 'null'] } } } }),
      },
    },
    async (req) => {
      const page = await listUsers(db, req.principal.organizationId, { after: decodeCursor(req.query.cursor), limit: req.query.limit });
      return { items: page.items.map(userView), nextCursor: encodeCursor(page.nextCursor) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/users/:id',
    { config: { action: 'users.read' }, schema: { tags, summary: 'Get a user', params: idParams, response: responses({ 200: userSchema }) } },
    async (req) => {
      const user = await findUser(db, req.principal.organizationId, req.params.id);
      if (!user) throw new NotFoundError('user', req.params.id);
      return userView(user);
    },
  );

  app.patch<{ Params: { id: string }; Body: UserChanges }>(
    '/v1/users/:id',
    {
      config: { action: 'users.manage' },
      schema: {
        tags,
        summary: "Change a user's role, name or disabled state (the last OWNER cannot be demoted or disabled: 409)",
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { role, name, disabled: { type: 'boolean' } },
        },
        response: responses({ 200: userSchema }),
      },
    },
    async (req) => {
      if (req.body.role !== undefined) assertCanGrant(req.principal.role, req.body.role, 'give a user a role');
      const user = await db.transaction((tx) => updateUser(tx, req.principal.organizationId, req.params.id, req.body));
      if (!user) throw new NotFoundError('user', req.params.id);
      return userView(user);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/users/:id',
    {
      config: { action: 'users.manage' },
      schema: {
        tags,
        summary: 'Delete a user and revoke their keys (the last OWNER cannot be deleted: 409)',
        params: idParams,
        response: responses({ 204: { type: 'null' } }),
      },
    },
    async (req, reply) => {
      const deleted = await db.transaction((tx) => deleteUser(tx, req.principal.organizationId, req.params.id));
      if (!deleted) throw new NotFoundError('user', req.params.id);
      return reply.status(204).send();
    },
  );
}
