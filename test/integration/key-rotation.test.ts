import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { createCredential, resolveCredentials } from '../../src/security/credentials.js';
import { rotateKeys } from '../../src/security/key-rotation.js';
import { authenticateWebhookDelivery, enableWebhook } from '../../src/security/webhooks.js';
import { sign } from '../../src/security/webhook-signature.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger } from '../helpers/fixtures.js';
import { client, simpleDefinition, type ApiClient } from '../helpers/api.js';

/**
 * `stepwise keys rotate`: every credential and webhook secret ends up sealed
 * under the newest key, batch by batch; interrupted, a rerun finishes the
 * rest without re-sealing what was done.
 */
const OLD = generateKeyEntry();
const NEW = `knew:${generateKeyEntry().split(':')[1]}`;
const oldRing = parseKeyRing(OLD);
const bothRings = parseKeyRing(`${NEW},${OLD}`);
const newOnly = parseKeyRing(NEW);

let t: TestDb;
let app: FastifyInstance;
let api: ApiClient;
const orgs: string[] = [];
const secrets = new Map<string, { org: string; token: string }>();
const hooks: { workflowId: string; secret: string }[] = [];

beforeAll(async () => {
  t = await createTestDb();
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test', keyRing: oldRing });
  for (const name of ['Rot A', 'Rot B']) {
    const org = await seedOrg(t.db, name);
    orgs.push(org.organizationId);
    api = client(app, org.key);
    for (let i = 0; i < 4; i++) {
      const token = `${name}-token-${i}`;
      const c = await createCredential(t.db, oldRing, org.organizationId, { provider: 'p', name: `c${i}`, secret: { token } }, { actor: 'test' });
      secrets.set(c.name + org.organizationId, { org: org.organizationId, token });
    }
    // One webhook issued through the API (sealed under the old key), one from before the key ring (in clear).
    for (const sealed of [true, false]) {
      const wf = (await api.post('/v1/workflows', { name: `hook ${sealed}`, definition: simpleDefinition() })).body;
      const issued = sealed
        ? (await api.post(`/v1/workflows/${wf.id}/webhook`)).body
        : await enableWebhook(t.db, org.organizationId, wf.id, null);
      expect(issued.secret).toMatch(/^whsec_/);
      hooks.push({ workflowId: wf.id, secret: issued.secret });
    }
  }
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function keyIds(): Promise<{ credentials: Record<string, number>; webhooks: Record<string, number> }> {
  const c = await t.db.query<{ key_id: string; n: number }>('SELECT key_id, count(*)::int AS n FROM stepwise.credentials GROUP BY 1');
  const w = await t.db.query<{ key_id: string; n: number }>(
    `SELECT coalesce(secret_key_id, 'clear') AS key_id, count(*)::int AS n FROM stepwise.webhook_triggers GROUP BY 1`,
  );
  return {
    credentials: Object.fromEntries(c.rows.map((r) => [r.key_id, r.n])),
    webhooks: Object.fromEntries(w.rows.map((r) => [r.key_id, r.n])),
  };
}

describe('webhook secrets under the key ring', () => {
  it('are stored sealed when issued with a ring, and deliveries still verify', async () => {
    const { rows } = await t.db.query<{ secret: string | null; secret_key_id: string | null }>(
      'SELECT secret, secret_key_id FROM stepwise.webhook_triggers WHERE workflow_id = $1',
      [hooks[0]!.workflowId],
    );
    expect(rows[0]).toEqual({ secret: null, secret_key_id: oldRing.currentKeyId });
    const ts = Math.floor(Date.now() / 1000);
    const body = Buffer.from('{"a":1}');
    const ok = await authenticateWebhookDelivery(
      t.db,
      hooks[0]!.workflowId,
      { timestamp: String(ts), signature: sign(hooks[0]!.secret, ts, body) },
      body,
      Date.now(),
      oldRing,
    );
    expect(ok.workflowId).toBe(hooks[0]!.workflowId);
  });
});

describe('keys rotate', () => {
  it('interrupted after its first batch, a rerun converges: everything under the new key, each row re-sealed once', async () => {
    expect(await keyIds()).toEqual({ credentials: { [oldRing.currentKeyId]: 8 }, webhooks: { [oldRing.currentKeyId]: 2, clear: 2 } });
    let batches = 0;
    await expect(
      rotateKeys(t.db, bothRings, {
        batchSize: 3,
        onBatch: () => {
          if (++batches === 1) throw new Error('killed mid-way');
        },
      }),
    ).rejects.toThrow('killed mid-way');
    const half = await keyIds();
    expect(half.credentials).toEqual({ [oldRing.currentKeyId]: 5, knew: 3 });

    const rest = await rotateKeys(t.db, bothRings, { batchSize: 3 });
    expect(rest).toEqual({ credentials: 5, webhooks: 4, unreadable: { credentials: [], webhooks: [] } });
    expect(await keyIds()).toEqual({ credentials: { knew: 8 }, webhooks: { knew: 4 } });
    // Nothing left: a third run is a no-op.
    expect((await rotateKeys(t.db, bothRings)).credentials).toBe(0);

    // ROTATE audited once per credential, by the CLI.
    const audit = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.credential_audit_log WHERE action = 'ROTATE' AND actor = 'cli:keys-rotate'`);
    expect(audit.rows[0]!.n).toBe(8);
  });

  it('after rotation the old key can be dropped: every secret opens with the new key alone', async () => {
    for (const org of orgs) {
      const names = ['c0', 'c1', 'c2', 'c3'];
      const opened = await resolveCredentials(t.db, newOnly, { organizationId: org, jobId: org, stepId: 's', actor: 'test' }, names);
      expect(opened.missing).toEqual([]);
      expect(opened.unreadable).toEqual([]);
      for (const n of names) expect(opened.values[n]).toEqual({ token: secrets.get(n + org)!.token });
    }
    const ts = Math.floor(Date.now() / 1000);
    for (const hook of hooks) {
      const body = Buffer.from(`{"hook":"${hook.workflowId}"}`);
      const ok = await authenticateWebhookDelivery(
        t.db,
        hook.workflowId,
        { timestamp: String(ts), signature: sign(hook.secret, ts, body) },
        body,
        Date.now(),
        newOnly,
      );
      expect(ok.workflowId).toBe(hook.workflowId);
    }
    const clear = await t.db.query('SELECT 1 FROM stepwise.webhook_triggers WHERE secret IS NOT NULL');
    expect(clear.rows).toEqual([]);
  });

  it('reports rows sealed under a key missing from the ring and leaves them untouched', async () => {
    const stray = parseKeyRing(generateKeyEntry());
    const c = await createCredential(t.db, stray, orgs[0]!, { provider: 'p', name: 'stray', secret: { token: 'x1234' } }, { actor: 'test' });
    const result = await rotateKeys(t.db, newOnly);
    expect(result.unreadable.credentials).toEqual([c.id]);
    const { rows } = await t.db.query<{ key_id: string }>('SELECT key_id FROM stepwise.credentials WHERE id = $1', [c.id]);
    expect(rows[0]!.key_id).toBe(stray.currentKeyId);
  });
});
