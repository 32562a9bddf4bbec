import type { Queryable } from '../db/index.js';

/** Blob keys queued for deletion (their last database reference is gone), oldest first. */
export async function listBlobDeletions(db: Queryable, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ blob_key: string }>(
    `SELECT blob_key FROM stepwise.blob_deletions ORDER BY queued_at, blob_key LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.blob_key);
}

/** How many blob deletions are queued. */
export async function countBlobDeletions(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.blob_deletions`);
  return rows[0]?.n ?? 0;
}

/** Forget queued keys whose blobs are deleted. */
export async function deleteBlobDeletions(db: Queryable, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query(`DELETE FROM stepwise.blob_deletions WHERE blob_key = ANY($1::text[])`, [keys]);
}

/** Queue keys for deletion (e.g. a blob written by a capture that then failed). */
export async function queueBlobDeletions(db: Queryable, organizationId: string | null, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query(
    `INSERT INTO stepwise.blob_deletions (blob_key, organization_id)
     SELECT k, $1 FROM unnest($2::text[]) AS k ON CONFLICT (blob_key) DO NOTHING`,
    [organizationId, keys],
  );
}
