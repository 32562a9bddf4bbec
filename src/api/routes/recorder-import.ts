import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { importChromeRecording } from '../../engine/recorder-import.js';
import { workflowView } from '../../read/index.js';
import { responses } from '../schemas.js';

export function recorderImportRoutes(app: FastifyInstance, db: Db): void {
  app.post<{ Body: { name?: string; recording: Record<string, unknown>; allowOrigins?: string[] } }>(
    '/v1/workflows/import/chrome-recorder',
    {
      config: { action: 'workflows.manage' },
      schema: {
        tags: ['workflows'],
        summary: 'Create a workflow of one browser step from a Chrome DevTools Recorder export',
        description:
          'The export\'s steps become the browser step\'s actions; its navigations\' origins become the allowed origins unless `allowOrigins` is given. An invalid export is a 400 naming the step index and field (`/recording/steps/3/selectors`).',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['recording'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
            recording: { type: 'object' },
            allowOrigins: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 300 } },
          },
        },
        response: responses({ 201: { $ref: 'Workflow#' } }),
      },
    },
    async (req, reply) => {
      const wf = await importChromeRecording(db, req.principal.organizationId, req.body);
      return reply.status(201).send(workflowView(wf));
    },
  );
}
