import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import type { KeyRing } from '../../security/crypto.js';
import {
  createCredential,
  getCredential,
  removeCredential,
  updateCredential,
  type CredentialInput,
} from '../../security/credentials.js';
import { listCredentials, type Credential, type CredentialActor } from '../../store/credentials.js';
import { idParams, responses, uuid } from '../schemas.js';
import { actorName } from '../phi.js';
import type { EgressPolicy } from '../../net/address-policy.js';
import { assertCredentialEgress } from '../../security/credential-egress.js';

const dateTime = { type: 'string', format: 'date-time' } as const;

const credentialSchema = {
  type: 'object',
  properties: { id: uuid, provider: { type: 'string' }, name: { type: 'string' }, createdAt: dateTime, updatedAt: dateTime },
  required: ['id', 'provider', 'name', 'createdAt', 'updatedAt'],
} as const;

const credentialBody = {
  type: 'object',
  additionalProperties: false,
  required: ['provider', 'name', 'secret'],
  properties: {
    provider: { type: 'string', minLength: 1, maxLength: 100, pattern: '\\S' },
    // Referenced as {{ credentials.<name>.<field> }}: an identifier.
    name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    // Fields are checked in security/credentials.ts (flat, scalar, 16 KiB).
    secret: { type: 'object' },
  },
} as const;

/** The credential as the API shows it: never the secret, not even its field names. */
function credentialView(c: Credential) {
  return { id: c.id, provider: c.provider, name: c.name, createdAt: c.createdAt, updatedAt: c.updatedAt };
}

function actorOf(req: FastifyRequest): CredentialActor {
  return { actor: actorName(req), apiKeyId: req.principal.apiKeyId };
}

/**
 * Integration credentials: the secret goes in on POST and PUT and never comes back out. A secret that names an
 * address the egress policy refuses (a provider baseUrl, an SMTP host, a connection string) is refused at save.
 */
export function credentialRoutes(app: FastifyInstance, db: Db, keyRing: KeyRing | null, egress: EgressPolicy): void {
  app.post<{ Body: CredentialInput }>(
    '/v1/credentials',
    {
      config: { action: 'credentials.manage' },
      schema: {
        tags: ['credentials'],
        summary: 'Create a credential; steps use it as {{ credentials.<name>.<field> }}. The secret is never returned.',
        body: credentialBody,
        response: responses({ 201: credentialSchema }),
      },
    },
    async (req, reply) => {
      assertCredentialEgress(egress, req.body.provider, req.body.secret);
      return reply.status(201).send(credentialView(await createCredential(db, keyRing, req.principal.organizationId, req.body, actorOf(req))));
    },
  );

  app.get(
    '/v1/credentials',
    {
      config: { action: 'credentials.read' },
      schema: {
        tags: ['credentials'],
        summary: "List the organization's credentials (never their secrets)",
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: credentialSchema } } } }),
      },
    },
    async (req) => ({ items: (await listCredentials(db, req.principal.organizationId)).map(credentialView) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/credentials/:id',
    {
      config: { action: 'credentials.read' },
      schema: { tags: ['credentials'], summary: 'Get a credential (never its secret)', params: idParams, response: responses({ 200: credentialSchema }) },
    },
    async (req) => credentialView(await getCredential(db, req.principal.organizationId, req.params.id)),
  );

  app.put<{ Params: { id: string }; Body: CredentialInput }>(
    '/v1/credentials/:id',
    {
      config: { action: 'credentials.manage' },
      schema: {
        tags: ['credentials'],
        summary: 'Replace a credential: provider, name and the whole secret',
        params: idParams,
        body: credentialBody,
        response: responses({ 200: credentialSchema }),
      },
    },
    async (req) => {
      assertCredentialEgress(egress, req.body.provider, req.body.secret);
      return credentialView(await updateCredential(db, keyRing, req.principal.organizationId, req.params.id, req.body, actorOf(req)));
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/credentials/:id',
    {
      config: { action: 'credentials.manage' },
      schema: { tags: ['credentials'], summary: 'Delete a credential (its audit trail stays)', params: idParams, response: responses({ 204: { type: 'null' } }) },
    },
    async (req, reply) => {
      await removeCredential(db, req.principal.organizationId, req.params.id, actorOf(req));
      return reply.status(204).send();
    },
  );
}
