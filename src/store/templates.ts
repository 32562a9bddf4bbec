import type { Queryable } from '../db/index.js';
import { uuidv7 } from '../util/ids.js';

export const TEMPLATE_CATEGORIES = ['MARKETING', 'SALES', 'OPERATIONS', 'CUSTOMER_SUPPORT', 'ADMIN', 'CUSTOM'] as const;
export type TemplateCategory = (typeof TEMPLATE_CATEGORIES)[number];
export const TEMPLATE_DIFFICULTIES = ['BEGINNER', 'INTERMEDIATE', 'ADVANCED'] as const;
export type TemplateDifficulty = (typeof TEMPLATE_DIFFICULTIES)[number];
export type TemplateAuthor = 'OFFICIAL' | 'COMMUNITY';
export const TEMPLATE_SORTS = ['relevance', 'popularity', 'rating'] as const;
export type TemplateSort = (typeof TEMPLATE_SORTS)[number];

/** What a template says about itself: the fields an author writes (official code or a COMMUNITY POST). */
export interface TemplateContent {
  name: string;
  description: string;
  category: TemplateCategory;
  tags: string[];
  difficulty: TemplateDifficulty;
  estimatedMinutesSaved: number;
  /** A workflow definition with config placeholders (templates/config.ts). */
  definition: Record<string, unknown>;
  requiredIntegrations: string[];
  optionalIntegrations: string[];
  settingsSchema: Record<string, unknown>;
}

export interface Template extends TemplateContent {
  id: string;
  /** null: OFFICIAL. */
  organizationId: string | null;
  slug: string | null;
  author: TemplateAuthor;
  isPublic: boolean;
  popularity: number;
  rating: number;
  ratingCount: number;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface TemplateRow {
  id: string;
  owner_organization_id: string | null;
  slug: string | null;
  name: string;
  description: string;
  category: TemplateCategory;
  tags: string[];
  difficulty: TemplateDifficulty;
  estimated_minutes_saved: number;
  definition: Record<string, unknown>;
  required_integrations: string[];
  optional_integrations: string[];
  settings_schema: Record<string, unknown>;
  author: TemplateAuthor;
  is_public: boolean;
  popularity: string;
  rating: number;
  rating_count: number;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `t.id, t.owner_organization_id, t.slug, t.name, t.description, t.category, t.tags, t.difficulty,
  t.estimated_minutes_saved, t.definition, t.required_integrations, t.optional_integrations, t.settings_schema,
  t.author, t.is_public, t.popularity::text AS popularity, t.rating, t.rating_count, t.created_by, t.created_at, t.updated_at`;

/** What `organizationId` may read: official, public, and its own (row-level security says the same on the tenant path). */
const VISIBLE = `(t.owner_organization_id IS NULL OR t.is_public OR t.owner_organization_id = $1)`;

function toTemplate(r: TemplateRow): Template {
  return {
    id: r.id,
    organizationId: r.owner_organization_id,
    slug: r.slug,
    name: r.name,
    description: r.description,
    category: r.category,
    tags: r.tags,
    difficulty: r.difficulty,
    estimatedMinutesSaved: r.estimated_minutes_saved,
    definition: r.definition,
    requiredIntegrations: r.required_integrations,
    optionalIntegrations: r.optional_integrations,
    settingsSchema: r.settings_schema,
    author: r.author,
    isPublic: r.is_public,
    popularity: Number(r.popularity),
    rating: Number(r.rating),
    ratingCount: r.rating_count,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface TemplateSearch {
  /** Web-search syntax (`claim status`, `"email reply"`, `-browser`); empty: no text filter. */
  q?: string | undefined;
  category?: TemplateCategory | undefined;
  /** A credential provider among the template's required or optional integrations. */
  integration?: string | undefined;
  minRating?: number | undefined;
  sort: TemplateSort;
  offset: number;
  limit: number;
}

export interface TemplatePage {
  items: (Template & { rank: number | null })[];
  /** Offset of the next page, or null after the last. */
  nextOffset: number | null;
}

/**
 * The catalogue as `organizationId` sees it. Relevance is ts_rank with the
 * column's weights (name and tags A = 1.0, description B = 0.4), so a match
 * in the name outranks one in the description; ties fall back to popularity,
 * then id, so pages are stable.
 */
export async function searchTemplates(db: Queryable, organizationId: string, s: TemplateSearch): Promise<TemplatePage> {
  const q = s.q?.trim() ? s.q.trim() : null;
  const order =
    s.sort === 'relevance' && q !== null
      ? 'rank DESC, t.popularity DESC, t.id'
      : s.sort === 'rating'
        ? 't.rating DESC, t.rating_count DESC, t.id'
        : 't.popularity DESC, t.id';
  const { rows } = await db.query<TemplateRow & { rank: number | null }>(
    `WITH query AS (SELECT CASE WHEN $2::text IS NULL THEN NULL ELSE websearch_to_tsquery('english', $2::text) END AS tsq)
     SELECT ${COLUMNS}, CASE WHEN query.tsq IS NULL THEN NULL ELSE ts_rank(t.search, query.tsq) END AS rank
       FROM stepwise.templates t, query
      WHERE ${VISIBLE}
        AND (query.tsq IS NULL OR t.search @@ query.tsq)
        AND ($3::text IS NULL OR t.category = $3)
        AND ($4::text IS NULL OR $4 = ANY (t.required_integrations) OR $4 = ANY (t.optional_integrations))
        AND ($5::float8 IS NULL OR t.rating >= $5)
      ORDER BY ${order}
      LIMIT $6 OFFSET $7`,
    [organizationId, q, s.category ?? null, s.integration ?? null, s.minRating ?? null, s.limit + 1, s.offset],
  );
  const items = rows.slice(0, s.limit).map((r) => ({ ...toTemplate(r), rank: r.rank === null ? null : Number(r.rank) }));
  return { items, nextOffset: rows.length > s.limit ? s.offset + s.limit : null };
}

/** A template `organizationId` may read, or null. */
export async function findTemplate(db: Queryable, organizationId: string, id: string): Promise<Template | null> {
  const { rows } = await db.query<TemplateRow>(`SELECT ${COLUMNS} FROM stepwise.templates t WHERE ${VISIBLE} AND t.id = $2`, [organizationId, id]);
  return rows[0] ? toTemplate(rows[0]) : null;
}

/** A new COMMUNITY template of `organizationId`, private. */
export async function insertCommunityTemplate(db: Queryable, organizationId: string, content: TemplateContent, createdBy: string | null): Promise<Template> {
  const id = uuidv7();
  const { rows } = await db.query<TemplateRow>(
    `INSERT INTO stepwise.templates AS t (id, owner_organization_id, name, description, category, tags, difficulty,
        estimated_minutes_saved, definition, required_integrations, optional_integrations, settings_schema, author, is_public, created_by)
     VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'COMMUNITY', false, $13)
     RETURNING ${COLUMNS}`,
    [
      organizationId,
      id,
      content.name,
      content.description,
      content.category,
      content.tags,
      content.difficulty,
      content.estimatedMinutesSaved,
      JSON.stringify(content.definition),
      content.requiredIntegrations,
      content.optionalIntegrations,
      JSON.stringify(content.settingsSchema),
      createdBy,
    ],
  );
  return toTemplate(rows[0]!);
}

export type TemplateChanges = Partial<TemplateContent> & { isPublic?: boolean | undefined };

/** Change a template `organizationId` owns; null when it owns no such template (official ones included). */
export async function updateOwnTemplate(db: Queryable, organizationId: string, id: string, c: TemplateChanges): Promise<Template | null> {
  const { rows } = await db.query<TemplateRow>(
    `UPDATE stepwise.templates AS t
        SET name = coalesce($3, name),
            description = coalesce($4, description),
            category = coalesce($5, category),
            tags = coalesce($6, tags),
            difficulty = coalesce($7, difficulty),
            estimated_minutes_saved = coalesce($8, estimated_minutes_saved),
            definition = coalesce($9::jsonb, definition),
            required_integrations = coalesce($10, required_integrations),
            optional_integrations = coalesce($11, optional_integrations),
            settings_schema = coalesce($12::jsonb, settings_schema),
            is_public = coalesce($13, is_public),
            updated_at = now()
      WHERE t.owner_organization_id = $1 AND t.id = $2
      RETURNING ${COLUMNS}`,
    [
      organizationId,
      id,
      c.name ?? null,
      c.description ?? null,
      c.category ?? null,
      c.tags ?? null,
      c.difficulty ?? null,
      c.estimatedMinutesSaved ?? null,
      c.definition === undefined ? null : JSON.stringify(c.definition),
      c.requiredIntegrations ?? null,
      c.optionalIntegrations ?? null,
      c.settingsSchema === undefined ? null : JSON.stringify(c.settingsSchema),
      c.isPublic ?? null,
    ],
  );
  return rows[0] ? toTemplate(rows[0]) : null;
}

/** Delete a template `organizationId` owns (its ratings go with it); false when it owns no such template. */
export async function deleteOwnTemplate(db: Queryable, organizationId: string, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM stepwise.templates WHERE owner_organization_id = $1 AND id = $2`, [organizationId, id]);
  return rowCount > 0;
}

/**
 * Set `userId`'s rating of a template (insert or change; the table's trigger
 * keeps the template's sum and count). Returns the template's new average
 * and count. The caller has checked the template is visible.
 */
export async function rateTemplate(
  db: Queryable,
  organizationId: string,
  templateId: string,
  userId: string,
  rating: number,
): Promise<{ rating: number; ratingCount: number; yours: number }> {
  await db.query(
    `INSERT INTO stepwise.template_ratings (template_id, organization_id, user_id, rating)
     VALUES ($2, $1, $3, $4)
     ON CONFLICT (template_id, user_id) DO UPDATE SET rating = EXCLUDED.rating, updated_at = now()`,
    [organizationId, templateId, userId, rating],
  );
  // A second statement: a data-modifying CTE's trigger effects are not visible to its own statement.
  const after = await db.query<{ rating: number; rating_count: number }>(
    `SELECT rating, rating_count FROM stepwise.templates WHERE id = $1`,
    [templateId],
  );
  return { rating: Number(after.rows[0]!.rating), ratingCount: after.rows[0]!.rating_count, yours: rating };
}

/** One more workflow made from the template; false when `organizationId` may not read it. */
export async function countTemplateUse(db: Queryable, organizationId: string, templateId: string): Promise<boolean> {
  const { rows } = await db.query<{ n: string | null }>(`SELECT stepwise.count_template_use($2, $1)::text AS n`, [organizationId, templateId]);
  return rows[0]?.n != null;
}

/** Which of `providers` the organization has no credential of yet (order kept). */
export async function providersWithoutCredential(db: Queryable, organizationId: string, providers: readonly string[]): Promise<string[]> {
  if (providers.length === 0) return [];
  const { rows } = await db.query<{ provider: string }>(
    `SELECT DISTINCT provider FROM stepwise.credentials WHERE organization_id = $1 AND provider = ANY ($2::text[])`,
    [organizationId, providers],
  );
  const have = new Set(rows.map((r) => r.provider));
  return providers.filter((p) => !have.has(p));
}

/** An official template as code declares it, keyed by its slug. */
export interface OfficialTemplateRow extends TemplateContent {
  slug: string;
}

/**
 * Upsert the official templates in one statement and delete official rows
 * whose slug the code no longer has. Rows whose content is unchanged are not
 * rewritten (no dead tuples at every start); popularity and ratings stay.
 * Returns how many rows were inserted or changed, and deleted.
 */
export async function upsertOfficialTemplates(db: Queryable, templates: readonly OfficialTemplateRow[]): Promise<{ written: number; deleted: number }> {
  const ids = templates.map(() => uuidv7());
  const { rows } = await db.query<{ n: number; deleted: number }>(
    `WITH src AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::int[],
                            $9::jsonb[], $10::jsonb[], $11::jsonb[], $12::jsonb[])
         AS s(id, slug, name, description, category, tags, difficulty, minutes, definition, required, optional, settings)
     ), written AS (
       INSERT INTO stepwise.templates AS t (id, slug, name, description, category, tags, difficulty, estimated_minutes_saved,
                                            definition, required_integrations, optional_integrations, settings_schema, author, is_public)
       SELECT id, slug, name, description, category,
              ARRAY(SELECT jsonb_array_elements_text(tags)), difficulty, minutes, definition,
              ARRAY(SELECT jsonb_array_elements_text(required)), ARRAY(SELECT jsonb_array_elements_text(optional)),
              settings, 'OFFICIAL', true
         FROM src
       ON CONFLICT (slug) DO UPDATE
          SET name = EXCLUDED.name, description = EXCLUDED.description, category = EXCLUDED.category, tags = EXCLUDED.tags,
              difficulty = EXCLUDED.difficulty, estimated_minutes_saved = EXCLUDED.estimated_minutes_saved,
              definition = EXCLUDED.definition, required_integrations = EXCLUDED.required_integrations,
              optional_integrations = EXCLUDED.optional_integrations, settings_schema = EXCLUDED.settings_schema, updated_at = now()
        WHERE (t.name, t.description, t.category, t.tags, t.difficulty, t.estimated_minutes_saved, t.definition,
               t.required_integrations, t.optional_integrations, t.settings_schema)
              IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.description, EXCLUDED.category, EXCLUDED.tags, EXCLUDED.difficulty, EXCLUDED.estimated_minutes_saved,
               EXCLUDED.definition, EXCLUDED.required_integrations, EXCLUDED.optional_integrations, EXCLUDED.settings_schema)
       RETURNING 1
     ), gone AS (
       DELETE FROM stepwise.templates t WHERE t.author = 'OFFICIAL' AND NOT (t.slug = ANY ($2::text[])) RETURNING 1
     )
     SELECT (SELECT count(*) FROM written)::int AS n, (SELECT count(*) FROM gone)::int AS deleted`,
    [
      ids,
      templates.map((t) => t.slug),
      templates.map((t) => t.name),
      templates.map((t) => t.description),
      templates.map((t) => t.category),
      templates.map((t) => JSON.stringify(t.tags)),
      templates.map((t) => t.difficulty),
      templates.map((t) => t.estimatedMinutesSaved),
      templates.map((t) => JSON.stringify(t.definition)),
      templates.map((t) => JSON.stringify(t.requiredIntegrations)),
      templates.map((t) => JSON.stringify(t.optionalIntegrations)),
      templates.map((t) => JSON.stringify(t.settingsSchema)),
    ],
  );
  return { written: rows[0]!.n, deleted: rows[0]!.deleted };
}
