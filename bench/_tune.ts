// TEMPORARY tuning harness (deleted before hand-off).
import { STEPWISE_SETTINGS, runStepwise } from './throughput.js';
import { GRAPHILE_SETTINGS, runGraphileWorker } from './peers/graphile-worker.js';
import { PG_BOSS_SETTINGS, runPgBoss } from './peers/pg-boss.js';
import { PgliteDb, PostgresDb } from '../src/db/index.js';
import { withScratchDatabase } from './lib.js';

const [system, json] = process.argv.slice(2);
const over = JSON.parse(json ?? '{}');
const opts = { jobs: Number(process.env.JOBS ?? 20000), warmup: 500 };
let r: { jobs: number; seconds: number };
if (system === 'sw-pg') {
  const s = { ...STEPWISE_SETTINGS.postgres, ...over, worker: { ...STEPWISE_SETTINGS.postgres.worker, ...over.worker } };
  r = await withScratchDatabase('stepwise', async (sc) => { const db = new PostgresDb(sc.url, s.poolSize); try { return await runStepwise(db, opts, s); } finally { await db.close(); } });
} else if (system === 'sw-lite') {
  const s = { ...STEPWISE_SETTINGS.pglite, ...over, worker: { ...STEPWISE_SETTINGS.pglite.worker, ...over.worker } };
  const db = await PgliteDb.open(); r = await runStepwise(db, opts, s); await db.close();
} else if (system === 'gw') { Object.assign(GRAPHILE_SETTINGS, over); r = await runGraphileWorker(opts); }
else { Object.assign(PG_BOSS_SETTINGS, over); r = await runPgBoss(opts); }
console.log(system, json, Math.round(r.jobs / r.seconds), r.seconds.toFixed(3));
process.exit(0);
