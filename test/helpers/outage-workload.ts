import { PostgresDb } from '../../src/db/index.js';
import { createOrganizationWithOwner } from '../../src/security/index.js';
import { createLogger } from '../../src/util/logger.js';
import { EFFECT_KEY_HEADER } from './side-effect-server.js';

/**
 * The two workflows the database-restart test and the soak benchmark run,
 * and the organization they run in. Each run calls the side-effect server
 * once, with the run's own key (its input `key`, which is also its start's
 * idempotency key), so the server's count per key says whether the run's
 * side effect happened exactly once.
 *
 * - `effect`: log, call, a short delay (runs span the restarts), log.
 * - `gated`: wait for the signal `go`, then call. The traffic sends `go` to
 *   most of them and cancels the others before they get it, so a cancelled
 *   run has made no call.
 */
export interface Workload {
  organizationId: string;
  apiKey: string;
  effectWorkflowId: string;
  gatedWorkflowId: string;
}

/** The signal a gated run waits for. */
export const GO_SIGNAL = 'go';

/** How long a gated run waits for its signal before it fails (longer than any run of the test or the soak). */
const GATED_WAIT_MS = 30 * 60_000;

export function effectDefinition(sideEffectUrl: string): Record<string, unknown> {
  return {
    steps: [
      { id: 'begin', type: 'log', message: 'effect {{ input.key }} begins' },
      {
        id: 'call',
        type: 'http',
        method: 'POST',
        url: `${sideEffectUrl}/effect`,
        headers: { [EFFECT_KEY_HEADER]: '{{ input.key }}' },
        body: { key: '{{ input.key }}' },
      },
      { id: 'pause', type: 'delay', durationMs: 300 },
      { id: 'end', type: 'log', message: 'effect {{ input.key }} done' },
    ],
  };
}

export function gatedDefinition(sideEffectUrl: string): Record<string, unknown> {
  return {
    steps: [
      { id: 'gate', type: 'wait', signal: GO_SIGNAL, timeoutMs: GATED_WAIT_MS },
      {
        id: 'call',
        type: 'http',
        method: 'POST',
        url: `${sideEffectUrl}/gated`,
        headers: { [EFFECT_KEY_HEADER]: '{{ input.key }}' },
        body: { key: '{{ input.key }}' },
      },
    ],
  };
}

async function createWorkflow(apiUrl: string, apiKey: string, name: string, definition: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${apiUrl}/v1/workflows`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, definition }),
  });
  const body = (await res.json()) as { id?: string };
  if (res.status !== 201 || !body.id) throw new Error(`creating workflow ${name}: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

/**
 * An ENTERPRISE organization (no plan limits) with its owner key, written
 * straight into the database the API runs on (the API has migrated it), and
 * the two workflows created through the API.
 */
export async function setUpWorkload(opts: { databaseUrl: string; apiUrl: string; sideEffectUrl: string }): Promise<Workload> {
  const db = new PostgresDb(opts.databaseUrl, { poolSize: 1, role: 'test', logger: createLogger('silent') });
  let organizationId: string;
  let apiKey: string;
  try {
    const created = await createOrganizationWithOwner(db, { name: 'outage', plan: 'ENTERPRISE', keyName: 'outage traffic' });
    organizationId = created.organization.id;
    apiKey = created.apiKey.key;
  } finally {
    await db.close();
  }
  return {
    organizationId,
    apiKey,
    effectWorkflowId: await createWorkflow(opts.apiUrl, apiKey, 'effect', effectDefinition(opts.sideEffectUrl)),
    gatedWorkflowId: await createWorkflow(opts.apiUrl, apiKey, 'gated', gatedDefinition(opts.sideEffectUrl)),
  };
}
