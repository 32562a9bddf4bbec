import type { Db } from '../db/index.js';
import { upsertOfficialTemplates } from '../store/index.js';
import { OFFICIAL_TEMPLATES } from './official/index.js';

/**
 * Make the table's OFFICIAL templates the ones in code (src/templates/official/):
 * insert new slugs, rewrite changed ones, delete slugs the code dropped.
 *
 * Why at start-up and not in a migration: the templates are TypeScript
 * (their definitions are checked against the step registry by a test), and
 * a migration's statements may never change once applied, while templates
 * change with every release. So every process that migrates (`openRuntime`)
 * runs this right after the migrations: one idempotent statement, keyed by
 * slug, that rewrites only rows whose content differs, so several processes
 * starting at once simply agree. Popularity and ratings are kept.
 */
export async function syncOfficialTemplates(db: Db): Promise<{ written: number; deleted: number }> {
  return db.transaction((tx) => upsertOfficialTemplates(tx, OFFICIAL_TEMPLATES));
}
