import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import { ConflictError, ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../../errors/index.js';
import {
  acceptInvitation,
  checkApiKey,
  checkPassword,
  DEFAULT_SESSION_LIMITS,
  endSession,
  idleExpiresAt,
  inviteUser,
  isAllowed,
  openSession,
  PASSWORD_MAX_LENGTH,
  primeDummyHash,
  roleAtLeast,
  type SessionLimits,
  type SignInVia,
} from '../../security/index.js';
import { findOrganization, findUser, findWebSession, userHasPassword, type Role, type User, type WebSession } from '../../store/index.js';
import { actorName } from '../phi.js';
import { assertSameOrigin } from '../same-origin.js';
import { clearSessionCookie, setSessionCookie } from '../session-cookie.js';
import { AttemptLimiter, SIGN_IN_LIMITS } from '../sign-in-throttle.js';
import { idParams, responses, uuid } from '../schemas.js';

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const email = { type: 'string', minLength: 3, maxLength: 254 } as const;
const password = { type: 'string', minLength: 1, maxLength: PASSWORD_MAX_LENGTH } as const;

const sessionSchema = {
  type: 'object',
  properties: {
    user: {
      type: 'object',
      properties: { id: uuid, email: { type: 'string' }, name: { type: ['string', 'null'] }, role: { type: 'string' } },
    },
    organization: { type: 'object', properties: { id: uuid, name: { type: 'string' } } },
    role: { type: 'string', description: 'the effective role: the user\'s, or min(key, user) for a key' },
    via: { type: 'string', enum: ['password', 'apiKey'] },
    expiresAt: { ...nullableDateTime, description: 'absolute end of the session (12 h after sign-in); null for a Bearer request' },
    idleExpiresAt: { ...nullableDateTime, description: 'when the session ends unless used (15 min idle); null for a Bearer request' },
  },
} as const;

interface SessionView {
  user: { id: string; email: string; name: string | null; role: Role };
  organization: { id: string; name: string };
  role: Role;
  via: SignInVia;
  expiresAt: Date | null;
  idleExpiresAt: Date | null;
}

async function sessionView(db: Db, user: User, role: Role, via: SignInVia, session: WebSession | null, limits: SessionLimits): Promise<SessionView> {
  const org = await findOrganization(db, user.organizationId);
  return {
    user: { id: user.id, email: user.email, name: user.name, role: user.role },
    organization: { id: user.organizationId, name: org?.name ?? '' },
    role,
    via,
    expiresAt: session?.expiresAt ?? null,
    idleExpiresAt: session ? idleExpiresAt(session, limits) : null,
  };
}

/**
 * Sign-in forms post JSON, which no other site can send here without a CORS
 * preflight we never grant; still, a browser that says where the request
 * came from must say it came from here (no signing a victim into another
 * account from a foreign page). Clients that send neither header (curl,
 * scripts) are not browsers and pass.
 */
function assertSignInOrigin(req: FastifyRequest): void {
  if (req.headers.origin !== undefined || req.headers['sec-fetch-site'] !== undefined) assertSameOrigin(req);
}

/**
 * Dashboard sign-in (security/sessions.ts): email and password, or a pasted
 * API key, open a server-side session held by an HttpOnly cookie
 * (api/session-cookie.ts); the current session can be read and ended; an
 * ADMIN or OWNER issues single-use invitation links through which a user
 * sets their password and is signed in.
 */
export function sessionRoutes(app: FastifyInstance, db: Db, limits: SessionLimits = DEFAULT_SESSION_LIMITS): void {
  const tags = ['sessions'];
  const perEmail = new AttemptLimiter(SIGN_IN_LIMITS.perEmail, 'email');
  const perIp = new AttemptLimiter(SIGN_IN_LIMITS.perIp, 'ip');
  void primeDummyHash();

  app.post<{ Body: { email?: string; password?: string; apiKey?: string; organizationId?: string } }>(
    '/v1/sessions',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Sign in with email and password, or with an API key; sets the session cookie',
        description:
          'Send `{ "email", "password" }` (and `organizationId` when the email exists in several organizations) or `{ "apiKey" }`. ' +
          'Wrong credentials are 401 INVALID_CREDENTIALS whichever part was wrong; at most 10 failed attempts per email and 30 per address in 5 minutes (429).',
        security: [],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { email, password, apiKey: { type: 'string', minLength: 1, maxLength: 200 }, organizationId: uuid },
        },
        response: responses({ 201: sessionSchema }),
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (b.apiKey !== undefined && (b.email !== undefined || b.password !== undefined)) {
        throw new ValidationError('/body/apiKey: send either an API key or an email and password, not both', { path: '/body/apiKey' });
      }
      if (b.apiKey === undefined) {
        if (b.email === undefined) throw new ValidationError('/body/email is required (or send apiKey)', { path: '/body/email' });
        if (b.password === undefined) throw new ValidationError('/body/password is required', { path: '/body/password' });
      }
      assertSignInOrigin(req);
      perIp.take(req.ip);
      const emailKey = b.email?.toLowerCase();
      if (emailKey !== undefined) {
        try {
          perEmail.take(emailKey);
        } catch (err) {
          perIp.refund(req.ip);
          throw err;
        }
      }
      let user: User;
      let role: Role;
      let apiKeyId: string | null = null;
      if (b.apiKey !== undefined) {
        const principal = await checkApiKey(db, b.apiKey);
        const found = await findUser(db, principal.organizationId, principal.userId);
        if (!found) throw new UnauthorizedError('the key\'s user no longer exists');
        user = found;
        role = principal.role;
        apiKeyId = principal.apiKeyId;
      } else {
        user = await checkPassword(db, b.email!, b.password!, b.organizationId);
        role = user.role;
      }
      perIp.refund(req.ip);
      if (emailKey !== undefined) perEmail.refund(emailKey);
      const opened = await db.transaction((tx) => openSession(tx, user.organizationId, { userId: user.id, apiKeyId }, limits));
      setSessionCookie(req, reply, opened.token, opened.session.expiresAt);
      return reply.status(201).send(await sessionView(db, user, role, apiKeyId ? 'apiKey' : 'password', opened.session, limits));
    },
  );

  app.get(
    '/v1/sessions/current',
    {
      config: { action: 'session.self' },
      schema: {
        tags,
        summary: 'Who is signed in: the session cookie\'s user (or a Bearer key\'s), with the session\'s expiry',
        response: responses({ 200: sessionSchema }),
      },
    },
    async (req) => {
      const p = req.principal;
      const user = p.userId ? await findUser(db, p.organizationId, p.userId) : null;
      if (!user) throw new UnauthorizedError('this key belongs to no user');
      if (p.sessionId === null) return sessionView(db, user, p.role, 'apiKey', null, limits);
      const session = await findWebSession(db, p.organizationId, Buffer.from(p.sessionId, 'hex'));
      if (!session) throw new UnauthorizedError('not signed in: the session has ended; sign in again');
      return sessionView(db, user, p.role, session.apiKeyId ? 'apiKey' : 'password', session, limits);
    },
  );

  app.delete(
    '/v1/sessions/current',
    {
      config: { action: 'session.self' },
      schema: { tags, summary: 'Sign out: end the session and clear its cookie (a Bearer request has no session: nothing to end)', response: responses({ 204: { type: 'null' } }) },
    },
    async (req, reply) => {
      if (req.principal.sessionId !== null) await endSession(db, req.principal.sessionId);
      clearSessionCookie(req, reply);
      return reply.status(204).send();
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/users/:id/invitations',
    {
      config: { action: 'users.invite' },
      schema: {
        tags,
        summary: 'Issue a single-use link (72 h) for a user to set their password; an earlier unused link of theirs stops working',
        params: idParams,
        response: responses({ 201: { type: 'object', properties: { token: { type: 'string' }, path: { type: 'string' }, expiresAt: dateTime } } }),
      },
    },
    async (req, reply) => {
      const p = req.principal;
      const user = await findUser(db, p.organizationId, req.params.id);
      if (!user) throw new NotFoundError('user', req.params.id);
      // Setting someone's password is taking over their account: only for users at or below one's own role.
      if (!roleAtLeast(p.role, user.role)) {
        throw new ForbiddenError(`cannot invite a user with role ${user.role}: above this caller's role ${p.role}`, {
          path: '/params/id',
          requiredRole: user.role,
          role: p.role,
        });
      }
      if (user.disabledAt) throw new ConflictError(`user ${user.id} is disabled; enable them before inviting them`, { path: '/params/id' });
      // A link for someone who already has a password replaces it: whoever holds the link becomes them.
      // That is account recovery, an OWNER's call (users.manage); an ADMIN only brings people in.
      if (!isAllowed(p.role, 'users.manage') && (await userHasPassword(db, p.organizationId, user.id))) {
        throw new ForbiddenError(`user ${user.id} already has a password; only an OWNER may issue a link that replaces it`, {
          path: '/params/id',
          requiredRole: 'OWNER',
          role: p.role,
        });
      }
      const invitation = await inviteUser(db, p.organizationId, user.id, actorName(req));
      return reply.status(201).send(invitation);
    },
  );

  app.post<{ Body: { token: string; password: string } }>(
    '/v1/invitations/accept',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Set one\'s password through an invitation (single use) and sign in; sets the session cookie',
        description: 'The password needs 12 to 256 characters. An unknown token is 404; a used or expired one 410.',
        security: [],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['token', 'password'],
          properties: { token: { type: 'string', minLength: 1, maxLength: 200 }, password },
        },
        response: { ...responses({ 201: sessionSchema }), 410: { $ref: 'Error#' } },
      },
    },
    async (req, reply) => {
      assertSignInOrigin(req);
      perIp.take(req.ip);
      const accepted = await acceptInvitation(db, req.body.token, req.body.password, limits);
      perIp.refund(req.ip);
      setSessionCookie(req, reply, accepted.token, accepted.session.expiresAt);
      return reply.status(201).send(await sessionView(db, accepted.user, accepted.user.role, 'password', accepted.session, limits));
    },
  );
}
