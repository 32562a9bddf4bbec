// TEMPORARY
import PgBoss from 'pg-boss';
import pg from 'pg';
import { createScratchDatabase } from './lib.js';
const sc = await createScratchDatabase('pgbossx');
const boss = new PgBoss({ connectionString: sc.url, supervise: false, schedule: false });
await boss.start(); await boss.createQueue('q');
for (let d = 0; d < 20000; d += 5000) await boss.insert(Array.from({ length: 5000 }, (_, i) => ({ name: 'q', data: { n: d + i } })));
const a = await boss.fetch('q', { batchSize: 1000 });
const b = await boss.fetch('q', { batchSize: 1000 });
const c = new pg.Client({ connectionString: sc.url }); await c.connect();
const q = `EXPLAIN (ANALYZE, BUFFERS) WITH results AS ( UPDATE pgboss.job SET completed_on = now(), state = 'completed', output = $3::jsonb WHERE name = $1 AND id IN (SELECT UNNEST($2::uuid[])) AND state = 'active' RETURNING * ) SELECT COUNT(*) FROM results`;
let r = await c.query(q, ['q', a.map((j) => j.id), null]);
console.log(r.rows.map((x) => x['QUERY PLAN']).join('\n'));
await c.query('ANALYZE pgboss.job');
r = await c.query(q, ['q', b.map((j) => j.id), null]);
console.log(r.rows.map((x) => x['QUERY PLAN']).join('\n'));
await c.end(); await boss.stop({ graceful: false, timeout: 1000 }); await sc.drop(); process.exit(0);
