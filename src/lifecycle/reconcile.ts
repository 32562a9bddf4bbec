import type { Db } from '../db/index.js';
import {
  findAggregateDrift,
  findMetadataDrift,
  listReadModelFailures,
  rebuildAggregates,
  repairMetadata,
  resolveReadModelFailures,
  type DriftCount,
  type MetadataDrift,
  type ReadModelFailure,
} from '../store/index.js';

export interface ReconcileReport {
  organizationId: string | null;
  metadata: MetadataDrift;
  /** Organizations whose daily totals disagree with a recount of their jobs. */
  aggregates: DriftCount;
  /** Read-model trigger failures recorded and not yet repaired. */
  failures: { count: number; items: ReadModelFailure[] };
  /** True when nothing drifted and no failure is open. */
  clean: boolean;
  repaired?: { metadataWritten: number; metadataDeleted: number; aggregateOrganizations: number; failuresResolved: number };
}

function isClean(metadata: MetadataDrift, aggregates: DriftCount, failures: number): boolean {
  return metadata.missing.count + metadata.orphaned.count + metadata.stale.count + aggregates.count + failures === 0;
}

/**
 * `stepwise reconcile`: the read model is written by triggers and may drift
 * (a failed trigger, a manual fix); compare it with jobs,
 * report the drift (counts and sample ids), and with `repair` make it match
 * — metadata rows rewritten from jobs, drifted organizations' aggregates
 * rebuilt — in one transaction, then report again.
 */
export async function reconcileReadModel(db: Db, opts: { organizationId?: string | null; repair?: boolean } = {}): Promise<ReconcileReport> {
  const organizationId = opts.organizationId ?? null;
  const metadata = await findMetadataDrift(db, organizationId);
  const aggregates = await findAggregateDrift(db, organizationId);
  const failures = await listReadModelFailures(db);
  const report: ReconcileReport = { organizationId, metadata, aggregates, failures, clean: isClean(metadata, aggregates, failures.count) };
  if (!opts.repair) return report;
  const repaired = await db.transaction(async (tx) => {
    const meta = await repairMetadata(tx, organizationId);
    // The drift query samples at most 10 organizations; repair all drifted ones.
    let orgs = 0;
    for (;;) {
      const drifted = await findAggregateDrift(tx, organizationId);
      if (drifted.count === 0) break;
      for (const org of drifted.sample) await rebuildAggregates(tx, org);
      orgs += drifted.sample.length;
    }
    return { metadataWritten: meta.written, metadataDeleted: meta.deleted, aggregateOrganizations: orgs, failuresResolved: await resolveReadModelFailures(tx) };
  });
  const after = await findMetadataDrift(db, organizationId);
  const aggAfter = await findAggregateDrift(db, organizationId);
  const failAfter = await listReadModelFailures(db);
  return { organizationId, metadata: after, aggregates: aggAfter, failures: failAfter, clean: isClean(after, aggAfter, failAfter.count), repaired };
}
