import type { Db } from '../db/index.js';
import { dropInvalidIndexCopies, listTableIndexes, rebuildIndex, tryAcquireMaintenanceLease } from '../store/index.js';

/**
 * Why the read model's indexes are rebuilt weekly: every execution_metadata
 * index leads with the organization, so a new row lands at the end of its
 * organization's range, in the middle of the index. PostgreSQL packs a page
 * split at such a point only for keys narrower than two bigints (nbtree's
 * "split after new item" rule); ours hold a uuid and a timestamp, so each
 * split leaves a half-full page behind that no later row ever lands in
 * (measured: 51 % leaf density, ~100 bytes an entry against ~50 packed).
 * A rebuild packs them to the 90 % fill factor; after it only the rows of
 * the last week sit in half-full pages.
 */
export const COMPACTED_TABLES = ['execution_metadata'] as const;
/** The lease that schedules compaction: taken for a week and never given back, so it runs once a week. */
export const INDEX_COMPACTION_LEASE = 'read-model-index-compaction';
export const INDEX_COMPACTION_INTERVAL_MS = 7 * 24 * 3600 * 1000;

export interface IndexCompactionReport {
  /** False when the last compaction was less than a week ago (and `force` was not set). */
  ran: boolean;
  indexes: { table: string; name: string; bytesBefore: number; bytesAfter: number }[];
  /** Leftovers of an interrupted rebuild that were dropped. */
  droppedInvalid: string[];
  ms: number;
}

export async function compactReadModelIndexes(
  db: Db,
  opts: { holder: string; force?: boolean; dryRun?: boolean; onIndex?: () => Promise<void> },
): Promise<IndexCompactionReport> {
  const started = performance.now();
  const report: IndexCompactionReport = { ran: false, indexes: [], droppedInvalid: [], ms: 0 };
  if (opts.dryRun) return report;
  // A holder name of this run only: a lease matching its holder is renewed,
  // and the same process would otherwise compact on every daily run.
  const due = await tryAcquireMaintenanceLease(db, INDEX_COMPACTION_LEASE, `${opts.holder}@${Date.now()}`, INDEX_COMPACTION_INTERVAL_MS);
  if (!due && !opts.force) return report;
  report.ran = true;
  for (const table of COMPACTED_TABLES) {
    report.droppedInvalid.push(...(await dropInvalidIndexCopies(db, table)));
    const before = await listTableIndexes(db, table);
    for (const index of before) {
      await rebuildIndex(db, index.name);
      await opts.onIndex?.();
    }
    const after = new Map((await listTableIndexes(db, table)).map((i) => [i.name, i.bytes]));
    for (const index of before) report.indexes.push({ table, name: index.name, bytesBefore: index.bytes, bytesAfter: after.get(index.name) ?? 0 });
  }
  report.ms = Math.round(performance.now() - started);
  return report;
}
