// TEMPORARY
import PgBoss from 'pg-boss';
import pg from 'pg';
import { withScratchDatabase, sleep } from './lib.js';
const workers = Number(process.argv[2] ?? 2), batch = Number(process.argv[3] ?? 1000);
await withScratchDatabase('pgboss', async (sc) => {
  const pool = new pg.Pool({ connectionString: sc.url, max: 10 });
  const stats = new Map<string, { n: number; ms: number; max: number }>();
  const db = { executeSql: async (text: string, values: any[]) => {
    const t = performance.now(); const r = await pool.query(text, values); const ms = performance.now() - t;
    const key = text.trim().slice(0, 40).replace(/\s+/g, ' ');
    const s = stats.get(key) ?? { n: 0, ms: 0, max: 0 }; s.n++; s.ms += ms; s.max = Math.max(s.max, ms); stats.set(key, s);
    return r; } };
  const boss = new PgBoss({ db, supervise: false, schedule: false, migrate: true } as any);
  boss.on('error', (e) => console.error(e));
  await boss.start(); await boss.createQueue('q');
  let ex = 0;
  for (let i = 0; i < workers; i++) { let id = ''; id = await boss.work('q', { batchSize: batch, pollingIntervalSeconds: 0.5 }, async (jobs) => { ex += jobs.length; if (jobs.length === batch) boss.notifyWorker(id); }); }
  await boss.insert(Array.from({ length: 500 }, (_, i) => ({ name: 'q', data: { n: i } })));
  for (;;) { const { rows } = await pool.query(`select count(*)::int n from pgboss.job where state='completed'`); if (rows[0].n === 500) break; await sleep(10); }
  if (process.env.ANALYZE) await pool.query('ANALYZE');
  stats.clear();
  const t0 = performance.now();
  for (let d = 0; d < 20000; d += 5000) await boss.insert(Array.from({ length: 5000 }, (_, i) => ({ name: 'q', data: { n: d + i } })));
  for (;;) { const { rows } = await pool.query(`select count(*)::int n from pgboss.job where state='completed'`); if (rows[0].n === 20500) break; await sleep(10); }
  console.log('done', ((performance.now() - t0) / 1000).toFixed(2), 'executed', ex);
  for (const [k, s] of stats) if (s.n > 1) console.log(k.padEnd(42), s.n, (s.ms / s.n).toFixed(1), s.max.toFixed(1));
  await boss.stop({ graceful: false, wait: true, timeout: 1000 }); await pool.end();
});
process.exit(0);
