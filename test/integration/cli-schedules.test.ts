import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/index.js';
import { defineWorkflow } from '../../src/engine/index.js';
import { authenticate } from '../../src/security/index.js';
import { findScheduleAuditEntries } from '../../src/store/index.js';
import { cliTarget, runCli, type CliTarget } from '../helpers/cli.js';

let cliDb: CliTarget;
const target: string[] = [];
let key: string;
let organizationId: string;
let workflowId: string;

const withDb = <T>(fn: (db: Db) => Promise<T>): Promise<T> => cliDb.withDb(fn);

async function cli(args: string[]): Promise<unknown> {
  const res = await runCli(['schedule', ...args, '--key', key, ...target]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

beforeAll(async () => {
  cliDb = await cliTarget('stepwise-cli-sched-');
  target.push(...cliDb.args);
  const created = await runCli(['org', 'create', '--name', 'Sched Org', ...target]);
  expect(created.code, created.stderr).toBe(0);
  ({ organizationId, apiKey: key } = JSON.parse(created.stdout) as { organizationId: string; apiKey: string });
  workflowId = await withDb(async (db) => (await defineWorkflow(db, organizationId, { name: 'w', definition: { steps: [{ id: 'a', type: 'noop' }] } })).id);
});

afterAll(async () => {
  await cliDb?.close();
});

// Each CLI call is a process that opens the database (~2 s on PGlite, more when the suite is busy).
describe('stepwise schedule', { timeout: 240_000 }, () => {
  it('create, list, pause, resume, delete; each change audited as the CLI with its key', async () => {
    const created = (await cli([
      'create', '--workflow', workflowId, '--cron', '30 2 * * *', '--timezone', 'America/New_York',
      '--input', '{"n":1}', '--misfire', 'run-once',
    ])) as Record<string, unknown>;
    expect(created).toMatchObject({ workflowId, name: '30 2 * * *', timezone: 'America/New_York', input: { n: 1 }, misfirePolicy: 'RUN_ONCE', enabled: true });
    expect(Date.parse(String(created.nextFireAt))).toBeGreaterThan(Date.now());
    const id = String(created.id);

    expect(((await cli(['list'])) as { id: string }[]).map((s) => s.id)).toEqual([id]);
    expect(await cli(['pause', id])).toMatchObject({ id, enabled: false, nextFireAt: null });
    expect(await cli(['resume', id])).toMatchObject({ id, enabled: true, nextFireAt: created.nextFireAt });
    expect(await cli(['delete', id])).toMatchObject({ id });
    expect(await cli(['list'])).toEqual([]);

    await withDb(async (db) => {
      const keyId = (await authenticate(db, key)).apiKeyId;
      const { items } = await findScheduleAuditEntries(db, organizationId, id, { limit: 10 });
      expect(items.map((e) => [e.action, e.actor])).toEqual(['DELETE', 'RESUME', 'PAUSE', 'CREATE'].map((a) => [a, `cli:${keyId}`]));
    });
  });

  it('bad input: a message on stderr naming the problem, exit 1, nothing created', async () => {
    const bad = async (args: string[], message: string) => {
      const res = await runCli(['schedule', ...args, ...target]);
      expect(res.code, res.stdout).toBe(1);
      expect(res.stderr).toContain(message);
    };
    await bad(['create', '--key', key, '--workflow', workflowId, '--cron', '0 25 * * *'], '--cron is not a valid cron expression');
    await bad(['create', '--key', key, '--workflow', workflowId, '--cron', '0 3 * * *', '--timezone', 'Nowhere/Land'], '--timezone "Nowhere/Land" is not a known IANA time zone');
    await bad(['create', '--key', key, '--workflow', workflowId, '--cron', '0 3 * * *', '--misfire', 'later'], '--misfire must be skip or run-once');
    await bad(['create', '--key', key, '--workflow', workflowId, '--cron', '0 3 * * *', '--input', '{nope'], '--input is not valid JSON');
    await bad(['create', '--key', key, '--workflow', 'wf-1', '--cron', '0 3 * * *'], '--workflow must be a UUID');
    await bad(['pause', '0190a0b0-0000-7000-8000-000000000001', '--key', key], 'schedule 0190a0b0-0000-7000-8000-000000000001 not found');
    await bad(['list', '--key', 'sw_wrong'], 'API key');
    expect(await cli(['list'])).toEqual([]);
  });
});
