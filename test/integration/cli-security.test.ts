import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteDb } from '../../src/db/index.js';
import { PERMISSIONS } from '../../src/security/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
let t: TestDb | undefined;
const target: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stepwise-cli-sec-'));
  if (backend === 'postgres') {
    t = await createTestDb();
    target.push('--database-url', t.url!);
  } else {
    target.push('--data-dir', join(dir, 'data'));
  }
});

afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('CLI: permissions and organizations', () => {
  it('stepwise permissions prints the matrix with every action', async () => {
    const res = await runCli(['permissions']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^\| action \| least role \| VIEWER \| MEMBER \| ADMIN \| OWNER \| covers \|/);
    for (const action of Object.keys(PERMISSIONS)) expect(res.stdout).toContain(`| ${action} |`);
  });

  it('org create makes an OWNER user with the key, on the plan asked for; a bad plan is refused', async () => {
    const bad = await runCli(['org', 'create', '--name', 'Nope', '--plan', 'PLATINUM', ...target]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--plan must be one of STARTER, PROFESSIONAL, ENTERPRISE');

    // A first open of an embedded directory runs initdb and every migration: slow on a busy 2-core machine.
    const res = await runCli(['org', 'create', '--name', 'Clinic', '--plan', 'PROFESSIONAL', '--owner-email', 'lead@clinic.example', ...target], {}, 170_000);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { organizationId: string; plan: string; ownerUserId: string; apiKey: string };
    expect(out.plan).toBe('PROFESSIONAL');
    const db = t?.db ?? (await PgliteDb.open({ dataDir: join(dir, 'data') }));
    try {
      const { rows } = await db.query<{ email: string; role: string; key_user: string }>(
        `SELECT u.email, u.role, k.user_id AS key_user FROM stepwise.users u JOIN stepwise.api_keys k ON k.user_id = u.id
          WHERE u.organization_id = $1`,
        [out.organizationId],
      );
      expect(rows).toEqual([{ email: 'lead@clinic.example', role: 'OWNER', key_user: out.ownerUserId }]);
    } finally {
      if (!t) await db.close();
    }
  }, 180_000);
});
