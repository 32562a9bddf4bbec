import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { clientView } from '../../read/index.js';
import { createClient, listClients } from '../../store/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { pageQuery, responses } from '../schemas.js';

export function clientRoutes(app: FastifyInstance, db: Db): void {
  app.post<{ Body: { name: string; externalId?: string | null } }>(
    '/v1/clients',
    {
      config: { action: 'clients.manage' },
      schema: {
        tags: ['clients'],
        summary: 'Create a client (the customer runs are on behalf of)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
            externalId: { type: ['string', 'null'], minLength: 1, maxLength: 100 },
          },
        },
        response: responses({ 201: { $ref: 'Client#' } }),
      },
    },
    async (req, reply) => reply.status(201).send(clientView(await createClient(db, req.principal.organizationId, req.body))),
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/clients',
    {
      config: { action: 'clients.read' },
      schema: {
        tags: ['clients'],
        summary: 'List clients',
        querystring: { type: 'object', additionalProperties: false, properties: pageQuery },
        response: responses({
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: { $ref: 'Client#' } }, nextCursor: { type: ['string', 'null'] } },
          },
        }),
      },
    },
    async (req) => {
      const page = await listClients(db, req.principal.organizationId, { after: decodeCursor(req.query.cursor), limit: req.query.limit });
      return { items: page.items.map(clientView), nextCursor: encodeCursor(page.nextCursor) };
    },
  );
}
