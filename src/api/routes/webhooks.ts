import type { KeyRing } from '../../security/crypto.js';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import { startWebhookRun } from '../../engine/webhooks.js';
import { PayloadTooLargeError } from '../../errors/index.js';
import {
  authenticateWebhookDelivery,
  describeWebhook,
  disableWebhook,
  enableWebhook,
  rotateWebhookSecret,
} from '../../security/webhooks.js';
import { rejectNulCharacters } from '../nul.js';
import { idParams, responses, uuid } from '../schemas.js';

/** Largest delivery body accepted (the API's general limit is 2 MiB; a run input is at most 1 MB anyway). */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

const issued = {
  type: 'object',
  properties: {
    url: { type: 'string', description: 'path to POST deliveries to' },
    secret: { type: 'string', description: 'shown only in this response; store it with the sender' },
  },
  required: ['url', 'secret'],
} as const;

const state = {
  type: 'object',
  properties: {
    enabled: { type: 'boolean' },
    createdAt: { type: ['string', 'null'], format: 'date-time' },
    rotatedAt: { type: ['string', 'null'], format: 'date-time' },
  },
  required: ['enabled', 'createdAt', 'rotatedAt'],
} as const;

const accepted = {
  type: 'object',
  properties: { jobId: uuid, runNumber: { type: 'integer' }, status: { type: 'string' } },
  required: ['jobId', 'runNumber', 'status'],
} as const;

const DELIVERY_DESCRIPTION = `No API key: the signature authenticates the sender.

Sign the exact bytes you send, with the webhook secret (the whole \`whsec_…\` string, as UTF-8) as the HMAC key:

    Stepwise-Timestamp: <unix seconds, now>
    Stepwise-Signature: v1=<hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>

The body must be JSON (\`Content-Type: application/json\`, at most ${WEBHOOK_BODY_LIMIT} bytes); it becomes the run's input, and the run's initiator is WEBHOOK.
A timestamp more than 5 minutes from the server's clock (either way) is refused, and so is a delivery already received (same timestamp, body and signature → 409 with \`details.reason = "REPLAY"\`); to send the same event again, sign it with a new timestamp.
An unknown workflow, a disabled webhook and a wrong signature all get the same 401.`;

/**
 * The body exactly as received, opaque on purpose: the app-wide NUL check
 * walks a body's enumerable properties, and walking a 1 MB Buffer index by
 * index took ~0.5 s here. The parsed JSON is checked after verification.
 */
class RawBody {
  readonly #bytes: Buffer;
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }
  get bytes(): Buffer {
    return this.#bytes;
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

type JsonParser = ReturnType<FastifyInstance['getDefaultJsonParser']>;

/** Parse with Fastify's own JSON parser so a delivery gets the prototype-poisoning checks every other body gets. */
function parseJson(parse: JsonParser, req: FastifyRequest, raw: Buffer): unknown {
  let result: { err: Error | null; value: unknown } = { err: null, value: undefined };
  // The default parser calls back synchronously.
  parse(req, raw.toString('utf8'), (err: Error | null, value?: unknown) => {
    result = { err, value };
  });
  if (result.err) throw result.err;
  return result.value;
}

export function webhookRoutes(app: FastifyInstance, db: Db, keyRing: KeyRing | null = null): void {
  const tags = ['webhooks'];

  app.post<{ Params: { id: string } }>(
    '/v1/workflows/:id/webhook',
    {
      config: { action: 'webhooks.manage' },
      schema: {
        tags,
        summary: 'Enable the workflow\'s webhook; returns its URL and secret (shown once). 409 when already enabled',
        params: idParams,
        response: responses({ 201: issued }),
      },
    },
    async (req, reply) => reply.status(201).send(await enableWebhook(db, req.principal.organizationId, req.params.id, keyRing)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/workflows/:id/webhook/rotate',
    {
      config: { action: 'webhooks.manage' },
      schema: {
        tags,
        summary: 'Replace the webhook secret (shown once); the old one is refused from now on',
        params: idParams,
        response: responses({ 200: issued }),
      },
    },
    async (req) => rotateWebhookSecret(db, req.principal.organizationId, req.params.id, keyRing),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/workflows/:id/webhook',
    { config: { action: 'workflows.read' }, schema: { tags, summary: 'Whether the webhook is enabled (never the secret)', params: idParams, response: responses({ 200: state }) } },
    async (req) => describeWebhook(db, req.principal.organizationId, req.params.id),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/workflows/:id/webhook',
    { config: { action: 'webhooks.manage' }, schema: { tags, summary: 'Disable the webhook', params: idParams, response: responses({ 204: { type: 'null' } }) } },
    async (req, reply) => {
      await disableWebhook(db, req.principal.organizationId, req.params.id);
      return reply.status(204).send();
    },
  );

  // Its own plugin scope: the content-type parsers and error handler below
  // apply to this route only, while the other routes keep parsed JSON bodies.
  void app.register(async (scope) => {
    // Verifying the signature needs the bytes as sent, so JSON is not parsed
    // here; any other content type finds no parser and gets 415.
    scope.removeAllContentTypeParsers();
    const jsonParser = scope.getDefaultJsonParser('error', 'error');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => {
      done(null, new RawBody(body as Buffer));
    });
    // Name this route's own limit (the app-wide handler would name the 2 MiB one); everything else goes to it unchanged.
    scope.setErrorHandler((err: FastifyError) => {
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') throw new PayloadTooLargeError('/body', null, WEBHOOK_BODY_LIMIT);
      throw err;
    });

    scope.post<{ Params: { workflowId: string } }>(
      '/v1/hooks/:workflowId',
      {
        config: { public: true },
        bodyLimit: WEBHOOK_BODY_LIMIT,
        schema: {
          tags,
          summary: 'Deliver a signed webhook: starts a run with the body as input',
          description: DELIVERY_DESCRIPTION,
          security: [],
          params: { type: 'object', properties: { workflowId: uuid }, required: ['workflowId'], additionalProperties: false },
          headers: {
            type: 'object',
            properties: {
              'stepwise-timestamp': { type: 'string', description: 'unix seconds' },
              'stepwise-signature': { type: 'string', description: 'v1=<hex HMAC-SHA256>' },
            },
          },
          response: { ...responses({ 202: accepted }), 415: { $ref: 'Error#' } },
        },
      },
      async (req, reply) => {
        const raw = req.body instanceof RawBody ? req.body.bytes : Buffer.alloc(0);
        const delivery = await authenticateWebhookDelivery(
          db,
          req.params.workflowId,
          { timestamp: header(req, 'stepwise-timestamp'), signature: header(req, 'stepwise-signature') },
          raw,
          Date.now(),
          keyRing,
        );
        // Parsed only once the sender is authenticated: a caller without the secret gets 401 whatever its body holds.
        const input = parseJson(jsonParser, req, raw);
        rejectNulCharacters(input);
        const run = await startWebhookRun(db, delivery, input);
        return reply.status(202).send({ jobId: run.id, runNumber: run.runNumber, status: run.status });
      },
    );
  });
}
