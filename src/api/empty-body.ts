import type { FastifyRequest } from 'fastify';

/**
 * preValidation for routes whose body fields are all optional: a POST sent
 * with no body at all is treated as `{}` instead of failing "must be object".
 */
export async function emptyBodyAsObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined || req.body === null) req.body = {};
}
