import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { findAppliedMigrations } from '../../db/index.js';
import { UnavailableError } from '../../errors/index.js';

export function healthRoutes(app: FastifyInstance, db: Db, version: string): void {
  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        tags: ['service'],
        summary: 'Liveness, backend and schema version (no key needed)',
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              backend: { type: 'string', enum: ['postgres', 'pglite'] },
              version: { type: 'string' },
              migrations: { type: 'object', properties: { applied: { type: 'integer' }, latest: { type: ['integer', 'null'] } } },
            },
          },
        },
      },
    },
    async () => {
      await db.query('SELECT 1').catch((err: unknown) => {
        throw new UnavailableError('database unreachable', {}, { cause: err });
      });
      const applied = await findAppliedMigrations(db);
      return {
        status: 'ok',
        backend: db.backend,
        version,
        migrations: { applied: applied.length, latest: applied[applied.length - 1] ?? null },
      };
    },
  );
}
