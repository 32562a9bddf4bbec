import type { Queryable } from '../db/index.js';
import { uuidv7 } from '../util/ids.js';

/**
 * Saved views (migration 0022): a named query string of a dashboard page
 * (the runs list). A personal view is visible to its owner only; a shared
 * one to the whole organization.
 */

export const SAVED_VIEW_PAGES = ['runs'] as const;
export type SavedViewPage = (typeof SAVED_VIEW_PAGES)[number];

export interface SavedView {
  id: string;
  organizationId: string;
  ownerUserId: string;
  name: string;
  page: SavedViewPage;
  query: string;
  shared: boolean;
  createdAt: Date;
}

interface SavedViewRow {
  id: string;
  organization_id: string;
  owner_user_id: string;
  name: string;
  page: SavedViewPage;
  query: string;
  shared: boolean;
  created_at: Date;
}

const COLUMNS = 'id, organization_id, owner_user_id, name, page, query, shared, created_at';

function toSavedView(r: SavedViewRow): SavedView {
  return {
    id: r.id,
    organizationId: r.organization_id,
    ownerUserId: r.owner_user_id,
    name: r.name,
    page: r.page,
    query: r.query,
    shared: r.shared,
    createdAt: r.created_at,
  };
}

/** The views of a page `userId` may see: their own and the shared ones, by name. */
export async function listSavedViews(db: Queryable, organizationId: string, userId: string | null, page: SavedViewPage): Promise<SavedView[]> {
  const { rows } = await db.query<SavedViewRow>(
    `SELECT ${COLUMNS} FROM stepwise.saved_views
      WHERE organization_id = $1 AND page = $2 AND (shared OR owner_user_id = $3::uuid)
      ORDER BY lower(name), created_at, id`,
    [organizationId, page, userId],
  );
  return rows.map(toSavedView);
}

/** How many views a user owns (the per-user cap). */
export async function countOwnSavedViews(db: Queryable, organizationId: string, userId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM stepwise.saved_views WHERE organization_id = $1 AND owner_user_id = $2`,
    [organizationId, userId],
  );
  return rows[0]!.n;
}

export async function createSavedView(
  db: Queryable,
  organizationId: string,
  view: { ownerUserId: string; name: string; page: SavedViewPage; query: string; shared: boolean },
): Promise<SavedView> {
  const { rows } = await db.query<SavedViewRow>(
    `INSERT INTO stepwise.saved_views (id, organization_id, owner_user_id, name, page, query, shared)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
    [uuidv7(), organizationId, view.ownerUserId, view.name, view.page, view.query, view.shared],
  );
  return toSavedView(rows[0]!);
}

export async function findSavedView(db: Queryable, organizationId: string, id: string): Promise<SavedView | null> {
  const { rows } = await db.query<SavedViewRow>(`SELECT ${COLUMNS} FROM stepwise.saved_views WHERE organization_id = $1 AND id = $2`, [
    organizationId,
    id,
  ]);
  return rows[0] ? toSavedView(rows[0]) : null;
}

export async function deleteSavedView(db: Queryable, organizationId: string, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM stepwise.saved_views WHERE organization_id = $1 AND id = $2`, [organizationId, id]);
  return rowCount > 0;
}
