import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/security/index.js';
import { runCli, cliTarget, type CliTarget } from '../helpers/cli.js';

let target: CliTarget;
let organizationId: string;
let ownerUserId: string;

beforeAll(async () => {
  target = await cliTarget('stepwise-cli-users-');
  // A first open of an embedded directory runs initdb and every migration: slow on a busy 2-core machine.
  const res = await runCli(['org', 'create', '--name', 'Clinic', '--owner-email', 'lead@clinic.example', ...target.args], {}, 170_000);
  expect(res.code, res.stderr).toBe(0);
  ({ organizationId, ownerUserId } = JSON.parse(res.stdout) as { organizationId: string; ownerUserId: string });
}, 180_000);

afterAll(async () => {
  await target?.close();
});

async function passwordHash(): Promise<string | null> {
  return target.withDb(async (db) => {
    const { rows } = await db.query<{ password_hash: string | null }>(`SELECT password_hash FROM stepwise.users WHERE id = $1`, [ownerUserId]);
    return rows[0]!.password_hash;
  });
}

describe('CLI: stepwise user', () => {
  it('set-password refuses a password under 12 characters, with a clear message and a non-zero exit, and sets nothing', async () => {
    const res = await runCli(['user', 'set-password', '--email', 'lead@clinic.example', ...target.args], {}, 120_000, 'short pw\n');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('the password is 8 characters; it must have at least 12');
    expect(await passwordHash()).toBeNull();
  }, 130_000);

  it('set-password reads the password from stdin and stores an scrypt hash of it', async () => {
    const res = await runCli(
      ['user', 'set-password', '--email', 'LEAD@clinic.example', '--org', organizationId, '--password-stdin', ...target.args],
      {},
      120_000,
      'a long enough password\n',
    );
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ userId: ownerUserId, organizationId, email: 'lead@clinic.example', passwordSet: true });
    const hash = await passwordHash();
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword('a long enough password', hash!)).toBe(true);
    expect(await verifyPassword('a long enough password\n', hash!)).toBe(false);
  }, 130_000);

  it('an unknown email fails; invite prints a single-use link path whose hash alone is stored', async () => {
    const unknown = await runCli(['user', 'set-password', '--email', 'nobody@clinic.example', ...target.args], {}, 120_000, 'a long enough password');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('nobody@clinic.example');

    const res = await runCli(['user', 'invite', '--email', 'lead@clinic.example', ...target.args], {}, 120_000);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { userId: string; path: string; expiresAt: string };
    expect(out.userId).toBe(ownerUserId);
    expect(out.path).toMatch(/^\/invite\/[A-Za-z0-9_-]{43}$/);
    const rows = await target.withDb(async (db) => (await db.query(`SELECT user_id, created_by, used_at FROM stepwise.user_invitations`)).rows);
    expect(rows).toEqual([{ user_id: ownerUserId, created_by: 'cli', used_at: null }]);
  }, 250_000);
});
