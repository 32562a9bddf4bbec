import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDb, type Db } from '../../src/db/index.js';
import { defineWorkflow, reviseWorkflow, retireWorkflow, startRuns } from '../../src/engine/index.js';
import { Scheduler } from '../../src/engine/scheduler.js';
import { defineSchedule, pauseSchedule, removeSchedule, resumeSchedule, reviseSchedule } from '../../src/engine/schedules.js';
import { NotFoundError, ValidationError } from '../../src/errors/index.js';
import { findSchedule, findScheduleAuditEntries, SCHEDULER_LOCK_KEY, type Job } from '../../src/store/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger } from '../helpers/fixtures.js';

let t: TestDb;
let org: string;
let clock: Date;
const now = () => clock;
const at = (iso: string) => new Date(iso);

beforeAll(async () => {
  t = await createTestDb();
  org = (await seedOrg(t.db)).organizationId;
});
afterAll(() => t?.close());
// The due query spans every schedule in the database: park each test's schedules so the next test's clock does not fire them.
afterEach(async () => {
  await t.db.query('UPDATE stepwise.schedules SET enabled = false, next_fire_at = NULL');
});

function scheduler(db: Db = t.db, graceMs = 60_000): Scheduler {
  return new Scheduler(db, { misfireGraceMs: graceMs }, silentLogger, { now });
}

async function workflow(name = 'scheduled'): Promise<string> {
  return (await defineWorkflow(t.db, org, { name, definition: { steps: [{ id: 'a', type: 'noop' }, { id: 'b', type: 'noop' }] } })).id;
}

type ScheduledJob = Pick<Job, 'idempotencyKey' | 'initiatorType' | 'input' | 'status' | 'stepsTotal' | 'workflowVersion'>;

/** A workflow's jobs in enqueue order (run number), with the fields these tests check. */
async function jobsOf(workflowId: string): Promise<ScheduledJob[]> {
  const { rows } = await t.db.query<ScheduledJob>(
    `SELECT idempotency_key AS "idempotencyKey", initiator_type AS "initiatorType", input, status,
            steps_total AS "stepsTotal", workflow_version AS "workflowVersion"
       FROM stepwise.jobs WHERE organization_id = $1 AND workflow_id = $2 ORDER BY run_number`,
    [org, workflowId],
  );
  return rows;
}

/** The fire times a schedule's jobs were enqueued for, oldest first. */
async function firedAt(workflowId: string, scheduleId: string): Promise<string[]> {
  const prefix = `schedule:${scheduleId}:`;
  return (await jobsOf(workflowId)).filter((j) => j.idempotencyKey?.startsWith(prefix)).map((j) => j.idempotencyKey!.slice(prefix.length));
}

/** Tick every `stepMs` from `from` to `to` inclusive. */
async function tickThrough(s: Scheduler, from: string, to: string, stepMs: number): Promise<void> {
  for (let ms = Date.parse(from); ms <= Date.parse(to); ms += stepMs) {
    clock = new Date(ms);
    await s.tick();
  }
}

describe('scheduler firing', () => {
  it('fires at each fire time, once, with the schedule input and initiator SCHEDULE', async () => {
    const wf = await workflow();
    clock = at('2030-01-01T00:00:30Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'every 5', cron: '*/5 * * * *', input: { n: 7 } }, { now: clock });
    expect(s.nextFireAt).toEqual(at('2030-01-01T00:05:00Z'));
    const sch = scheduler();

    clock = at('2030-01-01T00:04:59Z');
    expect(await sch.tick()).toEqual({ leader: true, schedules: 0, enqueued: 0 });
    clock = at('2030-01-01T00:05:00.300Z');
    expect(await sch.tick()).toEqual({ leader: true, schedules: 1, enqueued: 1 });
    expect(await sch.tick()).toEqual({ leader: true, schedules: 0, enqueued: 0 });
    clock = at('2030-01-01T00:10:01Z');
    await sch.tick();

    const jobs = await jobsOf(wf);
    expect(jobs.map((j) => j.idempotencyKey)).toEqual([
      `schedule:${s.id}:2030-01-01T00:05:00.000Z`,
      `schedule:${s.id}:2030-01-01T00:10:00.000Z`,
    ]);
    for (const j of jobs) expect(j).toMatchObject({ initiatorType: 'SCHEDULE', input: { n: 7 }, status: 'PENDING', stepsTotal: 2, workflowVersion: 1 });
    expect(await findSchedule(t.db, org, s.id)).toMatchObject({
      lastFiredAt: at('2030-01-01T00:10:00Z'),
      nextFireAt: at('2030-01-01T00:15:00Z'),
    });
  });

  it('DST spring forward: a 02:30 America/New_York schedule fires once on 2027-03-14, at 03:00 local', async () => {
    const wf = await workflow();
    clock = at('2027-03-13T12:00:00Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'nightly', cron: '30 2 * * *', timezone: 'America/New_York' }, { now: clock });
    await tickThrough(scheduler(), '2027-03-13T12:00:00Z', '2027-03-15T12:00:00Z', 15 * 60_000);
    // 03:00 EDT = 07:00Z on the 14th; 02:30 EDT = 06:30Z on the 15th.
    expect(await firedAt(wf, s.id)).toEqual(['2027-03-14T07:00:00.000Z', '2027-03-15T06:30:00.000Z']);
  });

  it('DST fall back: a 01:30 America/New_York schedule fires once on 2027-11-07', async () => {
    const wf = await workflow();
    clock = at('2027-11-06T12:00:00Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'nightly', cron: '30 1 * * *', timezone: 'America/New_York' }, { now: clock });
    await tickThrough(scheduler(), '2027-11-06T12:00:00Z', '2027-11-08T12:00:00Z', 15 * 60_000);
    // The first 01:30 (EDT, 05:30Z) fires; the repeated 01:30 (EST, 06:30Z) does not.
    expect(await firedAt(wf, s.id)).toEqual(['2027-11-07T05:30:00.000Z', '2027-11-08T06:30:00.000Z']);
  });

  it('misfire after downtime: SKIP runs nothing for the gap, RUN_ONCE runs once; both resume on time', async () => {
    const wf = await workflow();
    clock = at('2030-02-01T00:00:10Z');
    const spec = { workflowId: wf, cron: '0 * * * *' };
    const skip = await defineSchedule(t.db, org, 'test', { ...spec, name: 'skip', misfirePolicy: 'SKIP' }, { now: clock });
    const once = await defineSchedule(t.db, org, 'test', { ...spec, name: 'once', misfirePolicy: 'RUN_ONCE' }, { now: clock });
    const sch = scheduler();
    clock = at('2030-02-01T05:30:00Z'); // down from before 01:00 until 05:30
    expect(await sch.tick()).toMatchObject({ schedules: 2, enqueued: 1 });
    expect(await sch.tick()).toMatchObject({ schedules: 0, enqueued: 0 });
    expect(await firedAt(wf, skip.id)).toEqual([]);
    expect(await firedAt(wf, once.id)).toEqual(['2030-02-01T05:00:00.000Z']);
    for (const s of [skip, once]) expect((await findSchedule(t.db, org, s.id))!.nextFireAt).toEqual(at('2030-02-01T06:00:00Z'));

    clock = at('2030-02-01T06:00:20Z'); // late, but within the grace period
    await sch.tick();
    expect(await firedAt(wf, skip.id)).toEqual(['2030-02-01T06:00:00.000Z']);
    expect(await firedAt(wf, once.id)).toEqual(['2030-02-01T05:00:00.000Z', '2030-02-01T06:00:00.000Z']);
  });

  it('a workflow that is not ACTIVE gets no run, and its schedule moves on instead of piling up', async () => {
    const wf = await workflow();
    clock = at('2030-03-01T00:00:00Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'p', cron: '* * * * *' }, { now: clock });
    await reviseWorkflow(t.db, org, wf, { status: 'PAUSED' });
    const sch = scheduler();
    clock = at('2030-03-01T00:01:00Z');
    expect(await sch.tick()).toMatchObject({ schedules: 1, enqueued: 0 });
    expect((await findSchedule(t.db, org, s.id))!.nextFireAt).toEqual(at('2030-03-01T00:02:00Z'));

    await reviseWorkflow(t.db, org, wf, { status: 'ACTIVE' });
    clock = at('2030-03-01T00:02:00Z');
    expect(await sch.tick()).toMatchObject({ schedules: 1, enqueued: 1 });
    expect(await firedAt(wf, s.id)).toEqual(['2030-03-01T00:02:00.000Z']);

    await retireWorkflow(t.db, org, wf);
    clock = at('2030-03-01T00:03:00Z');
    expect(await sch.tick()).toMatchObject({ schedules: 1, enqueued: 0 });
    expect(await firedAt(wf, s.id)).toHaveLength(1);
  });

  it('a paused schedule does not fire; resuming starts after now, not with the paused period', async () => {
    const wf = await workflow();
    clock = at('2030-04-01T00:00:00Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'p', cron: '0 * * * *', misfirePolicy: 'RUN_ONCE' }, { now: clock });
    await pauseSchedule(t.db, org, 'test', s.id);
    const sch = scheduler();
    await tickThrough(sch, '2030-04-01T00:30:00Z', '2030-04-01T05:30:00Z', 30 * 60_000);
    expect(await firedAt(wf, s.id)).toEqual([]);
    const resumed = await resumeSchedule(t.db, org, 'test', s.id, { now: clock });
    expect(resumed.nextFireAt).toEqual(at('2030-04-01T06:00:00Z'));
    expect(await sch.tick()).toMatchObject({ enqueued: 0 });
  });

  it('a firing already enqueued is not enqueued again (the idempotency key is the backstop)', async () => {
    const wf = await workflow();
    clock = at('2030-05-01T00:00:00Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'k', cron: '* * * * *' }, { now: clock });
    const sch = scheduler();
    clock = at('2030-05-01T00:01:00Z');
    await sch.tick();
    // A stale leader that still believed 00:01 was due.
    await t.db.query('UPDATE stepwise.schedules SET next_fire_at = $1 WHERE id = $2', [at('2030-05-01T00:01:00Z'), s.id]);
    expect(await sch.tick()).toMatchObject({ schedules: 1, enqueued: 0 });
    expect(await firedAt(wf, s.id)).toEqual(['2030-05-01T00:01:00.000Z']);
  });

  it('one schedule that cannot enqueue does not block the others', async () => {
    const wf = await workflow();
    const other = await workflow('other');
    clock = at('2030-06-01T00:00:00Z');
    const bad = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'bad', cron: '* * * * *' }, { now: clock });
    const good = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'good', cron: '* * * * *' }, { now: clock });
    // Someone already used the bad schedule's next key for a run of another workflow.
    await startRuns(t.db, org, other, [{ idempotencyKey: `schedule:${bad.id}:2030-06-01T00:01:00.000Z` }]);
    clock = at('2030-06-01T00:01:00Z');
    expect(await scheduler().tick()).toMatchObject({ schedules: 2, enqueued: 1 });
    expect(await firedAt(wf, good.id)).toEqual(['2030-06-01T00:01:00.000Z']);
    expect(await firedAt(wf, bad.id)).toEqual([]);
    expect((await findSchedule(t.db, org, bad.id))!.nextFireAt).toEqual(at('2030-06-01T00:02:00Z'));
  });

  it('start() ticks on its own; stop() waits for the tick in flight and ends the loop', async () => {
    const wf = await workflow();
    clock = at('2030-07-01T00:00:00Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'loop', cron: '* * * * *' }, { now: clock });
    clock = at('2030-07-01T00:01:00Z');
    const sch = new Scheduler(t.db, { tickMs: 10 }, silentLogger, { now });
    sch.start();
    const deadline = Date.now() + 10_000;
    while ((await firedAt(wf, s.id)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await sch.stop();
    clock = at('2030-07-01T00:02:00Z');
    await new Promise((r) => setTimeout(r, 100));
    expect(await firedAt(wf, s.id)).toEqual(['2030-07-01T00:01:00.000Z']);
  });
});

describe('two schedulers on one database', () => {
  it('tick concurrently and enqueue every firing exactly once', async () => {
    const wf = await workflow('concurrent');
    clock = at('2030-08-01T00:00:00Z');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push((await defineSchedule(t.db, org, 'test', { workflowId: wf, name: `c${i}`, cron: '* * * * *' }, { now: clock })).id);
    }
    // On the server, two pools stand for two processes; PGlite is one connection, so both share it.
    const [first, second] = backend === 'postgres' ? [new PostgresDb(t.url!, 2), new PostgresDb(t.url!, 2)] : [];
    const a = scheduler(first ?? t.db);
    const b = scheduler(second ?? t.db);
    let leaders = 0;
    try {
      for (let ms = Date.parse('2030-08-01T00:00:20Z'); ms <= Date.parse('2030-08-01T00:10:00Z'); ms += 20_000) {
        clock = new Date(ms);
        const results = await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
        leaders += results.filter((r) => r.leader).length;
      }
    } finally {
      await first?.close();
      await second?.close();
    }
    expect(leaders).toBeGreaterThan(0);
    const expected = Array.from({ length: 10 }, (_, m) => `2030-08-01T00:${String(m + 1).padStart(2, '0')}:00.000Z`);
    for (const id of ids) expect(await firedAt(wf, id)).toEqual(expected);
    expect(await jobsOf(wf)).toHaveLength(100);
  });

  it.runIf(backend === 'postgres')('a scheduler that cannot take the leader lock does nothing', async () => {
    const wf = await workflow();
    clock = at('2030-09-01T00:00:00Z');
    const s = await defineSchedule(t.db, org, 'test', { workflowId: wf, name: 'l', cron: '* * * * *' }, { now: clock });
    clock = at('2030-09-01T00:01:00Z');
    const other = new PostgresDb(t.url!, 1);
    let release!: () => void, locked!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = other.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SCHEDULER_LOCK_KEY]);
      locked();
      await held;
    });
    try {
      await isLocked;
      expect(await scheduler().tick()).toEqual({ leader: false, schedules: 0, enqueued: 0 });
      expect(await firedAt(wf, s.id)).toEqual([]);
    } finally {
      release();
      await holder;
      await other.close();
    }
    expect(await scheduler().tick()).toMatchObject({ leader: true, enqueued: 1 });
  });
});

describe('schedule changes are audited in the same transaction', () => {
  it('create, update, pause, resume, delete each write one row with actor, before and after', async () => {
    const wf = await workflow();
    const start = at('2030-10-01T00:00:00Z');
    const s = await defineSchedule(t.db, org, 'key-1', { workflowId: wf, name: 'audited', cron: '0 9 * * *', input: { a: 1 } }, { now: start });
    const revised = await reviseSchedule(t.db, org, 'key-2', s.id, { cron: '0 10 * * *', timezone: 'Europe/Paris' }, { now: start });
    expect(revised.nextFireAt).toEqual(at('2030-10-01T08:00:00Z')); // 10:00 CEST
    await pauseSchedule(t.db, org, 'key-2', s.id);
    await resumeSchedule(t.db, org, 'key-1', s.id, { now: start });
    await removeSchedule(t.db, org, 'cli:key-3', s.id);

    const { items } = await findScheduleAuditEntries(t.db, org, s.id, { limit: 50 });
    expect(items.map((e) => [e.action, e.actor])).toEqual([
      ['DELETE', 'cli:key-3'],
      ['RESUME', 'key-1'],
      ['PAUSE', 'key-2'],
      ['UPDATE', 'key-2'],
      ['CREATE', 'key-1'],
    ]);
    const [del, resume, pause, update, create] = items;
    expect(create!.before).toBeNull();
    expect(create!.after).toEqual({
      workflowId: wf, name: 'audited', cron: '0 9 * * *', timezone: 'UTC', input: { a: 1 }, enabled: true,
      misfirePolicy: 'SKIP', nextFireAt: '2030-10-01T09:00:00.000Z', deletedAt: null,
    });
    expect(update!.before).toEqual(create!.after);
    expect(update!.after).toMatchObject({ cron: '0 10 * * *', timezone: 'Europe/Paris', nextFireAt: '2030-10-01T08:00:00.000Z' });
    expect(pause!.after).toMatchObject({ enabled: false, nextFireAt: null });
    expect(resume!.before).toEqual(pause!.after);
    expect(resume!.after).toMatchObject({ enabled: true, nextFireAt: '2030-10-01T08:00:00.000Z' });
    expect(del!.after).toMatchObject({ deletedAt: expect.any(String), nextFireAt: null });
    expect(await findSchedule(t.db, org, s.id)).toBeNull();
  });

  it('a change that fails writes neither the change nor an audit row', async () => {
    const wf = await workflow();
    const s = await defineSchedule(t.db, org, 'k', { workflowId: wf, name: 'x', cron: '0 9 * * *' });
    await expect(reviseSchedule(t.db, org, 'k', s.id, { name: 'y', cron: '99 * * * *' })).rejects.toBeInstanceOf(ValidationError);
    const otherOrg = (await seedOrg(t.db, 'Other')).organizationId;
    const foreign = await defineWorkflow(t.db, otherOrg, { name: 'theirs', definition: { steps: [{ id: 'a', type: 'noop' }] } });
    await expect(reviseSchedule(t.db, org, 'k', s.id, { name: 'y', workflowId: foreign.id })).rejects.toBeInstanceOf(NotFoundError);
    await expect(pauseSchedule(t.db, otherOrg, 'k', s.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(await findSchedule(t.db, org, s.id)).toMatchObject({ name: 'x', cron: '0 9 * * *', workflowId: wf, enabled: true });
    expect((await findScheduleAuditEntries(t.db, org, s.id, { limit: 50 })).items.map((e) => e.action)).toEqual(['CREATE']);
    // The audit log is append-only.
    await expect(t.db.query(`UPDATE stepwise.schedule_audit_log SET actor = 'forged' WHERE schedule_id = $1`, [s.id])).rejects.toThrow(/immutable/);
  });
});
