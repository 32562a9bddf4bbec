import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, type Worker } from '../../src/engine/index.js';
import { updateOrganizationLimits } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { callGate, type CallGate } from '../helpers/call-gate.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

let t: TestDb;
let srv: TestServer;
let worker: Worker;
const inFlight = new Map<string, number>();
const peak = new Map<string, number>();
const gates = new Map<string, CallGate>([
  ['free', callGate(3, 8)],
  ['orgl', callGate(3, 12)],
]);

beforeAll(async () => {
  t = await createTestDb();
  srv = await startTestServer((req, res) => {
    const group = req.url!.split('/')[1]!;
    const now = (inFlight.get(group) ?? 0) + 1;
    inFlight.set(group, now);
    peak.set(group, Math.max(peak.get(group) ?? 0, now));
    const answer = () => {
      inFlight.set(group, inFlight.get(group)! - 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    };
    const g = gates.get(group);
    if (!g) {
      setTimeout(answer, 80);
      return true;
    }
    g.hold(answer, now);
    return true;
  });
  worker = startWorker(t.db, { concurrency: 50, pollIntervalMs: 20 });
});

afterAll(async () => {
  await worker?.stop();
  await srv?.close();
  await t?.close();
});

function slowCall(group: string) {
  return { steps: [{ id: 'call', type: 'http', method: 'GET', url: `${srv.url}/${group}/x` }] };
}

describe('concurrency limits', () => {
  it('a workflow limit caps its running jobs; other workflows are not held back', async () => {
    const { organizationId } = await seedOrg(t.db, 'wf-limit');
    const limited = await defineWorkflow(t.db, organizationId, { name: 'limited', maxConcurrentRuns: 2, definition: slowCall('wfl') });
    const free = await defineWorkflow(t.db, organizationId, { name: 'free', definition: slowCall('free') });
    const runs = [
      ...(await startRuns(t.db, organizationId, limited.id, Array.from({ length: 8 }, () => ({})))),
      ...(await startRuns(t.db, organizationId, free.id, Array.from({ length: 8 }, () => ({})))),
    ];
    for (const r of runs) expect((await waitForJob(t.db, organizationId, r.id)).status).toBe('COMPLETED');
    expect(peak.get('wfl')).toBeLessThanOrEqual(2);
    expect(peak.get('wfl')).toBeGreaterThanOrEqual(1);
    expect(peak.get('free')).toBeGreaterThanOrEqual(3);
  });

  it('an organization limit caps its running jobs across workflows', async () => {
    const { organizationId } = await seedOrg(t.db, 'org-limit');
    await updateOrganizationLimits(t.db, organizationId, { maxConcurrentRuns: 3 });
    const a = await defineWorkflow(t.db, organizationId, { name: 'a', definition: slowCall('orgl') });
    const b = await defineWorkflow(t.db, organizationId, { name: 'b', definition: slowCall('orgl') });
    const runs = [
      ...(await startRuns(t.db, organizationId, a.id, Array.from({ length: 6 }, () => ({})))),
      ...(await startRuns(t.db, organizationId, b.id, Array.from({ length: 6 }, () => ({})))),
    ];
    for (const r of runs) expect((await waitForJob(t.db, organizationId, r.id)).status).toBe('COMPLETED');
    expect(peak.get('orgl')).toBeLessThanOrEqual(3);
    expect(peak.get('orgl')).toBe(3);
  });
});
