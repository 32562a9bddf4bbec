-- The template library: ready-made workflow definitions an organization turns
-- into a workflow of its own (POST /v1/templates/:id/instantiate).
--
-- OFFICIAL templates are code (src/templates/official/), upserted here by
-- slug when a process starts (src/templates/sync.ts); they belong to no
-- organization. COMMUNITY templates belong to the organization that wrote
-- them, private until an ADMIN of it makes them public.
--
-- Why the owner column is not called organization_id: every table with that
-- column is a tenant table whose rows only their organization sees
-- (enable_tenant_rls, test/integration/rls.test.ts). A template is the one
-- shared catalogue: every organization reads the official and public ones.
-- The policies below say exactly that, and writes stay with the owner.

-- Words of a template that search matches: name and tags weigh A, the
-- description B (ts_rank: a match in the name outranks one in the text).
-- array_to_string is only STABLE, so a generated column needs this wrapper;
-- it is immutable in fact (text[] → text with a fixed separator).
CREATE FUNCTION stepwise.template_search_vector(p_name text, p_description text, p_tags text[])
  RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT setweight(to_tsvector('english', p_name), 'A')
      || setweight(to_tsvector('english', coalesce(array_to_string(p_tags, ' '), '')), 'A')
      || setweight(to_tsvector('english', p_description), 'B')
$$;

CREATE TABLE stepwise.templates (
  id                      uuid          PRIMARY KEY,
  -- NULL for OFFICIAL templates; the writing organization for COMMUNITY ones.
  owner_organization_id   uuid          REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  -- OFFICIAL only: the stable key the startup sync upserts by (the file's slug).
  slug                    varchar(100)  UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,99}$'),
  name                    varchar(200)  NOT NULL CHECK (length(btrim(name)) > 0),
  description             varchar(4000) NOT NULL DEFAULT '',
  category                varchar(20)   NOT NULL
                          CHECK (category IN ('MARKETING', 'SALES', 'OPERATIONS', 'CUSTOMER_SUPPORT', 'ADMIN', 'CUSTOM')),
  tags                    text[]        NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
  difficulty              varchar(12)   NOT NULL DEFAULT 'BEGINNER'
                          CHECK (difficulty IN ('BEGINNER', 'INTERMEDIATE', 'ADVANCED')),
  -- Minutes of manual work one run saves (the catalogue shows it; nothing enforces it).
  estimated_minutes_saved integer       NOT NULL DEFAULT 0 CHECK (estimated_minutes_saved BETWEEN 0 AND 100000),
  -- A workflow definition with {"$config": "path"} and [[config.path]] placeholders (src/templates/config.ts).
  definition              jsonb         NOT NULL CHECK (jsonb_typeof(definition) = 'object' AND octet_length(definition::text) <= 1048576),
  -- Credential providers (openai, smtp, postgres, …) the template needs / can use.
  required_integrations   text[]        NOT NULL DEFAULT '{}' CHECK (cardinality(required_integrations) <= 20),
  optional_integrations   text[]        NOT NULL DEFAULT '{}' CHECK (cardinality(optional_integrations) <= 20),
  -- JSON Schema of the config an instantiation supplies.
  settings_schema         jsonb         NOT NULL DEFAULT '{"type":"object"}'
                          CHECK (jsonb_typeof(settings_schema) = 'object' AND octet_length(settings_schema::text) <= 65536),
  author                  varchar(10)   NOT NULL CHECK (author IN ('OFFICIAL', 'COMMUNITY')),
  is_public               boolean       NOT NULL DEFAULT false,
  -- Workflows made from it (instantiations).
  popularity              bigint        NOT NULL DEFAULT 0 CHECK (popularity >= 0),
  -- Kept by the template_ratings trigger below; the average is derived.
  rating_sum              bigint        NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
  rating_count            integer       NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
  rating                  double precision GENERATED ALWAYS AS
                          (CASE WHEN rating_count = 0 THEN 0 ELSE rating_sum::double precision / rating_count END) STORED,
  created_by              uuid,
  created_at              timestamptz   NOT NULL DEFAULT now(),
  updated_at              timestamptz   NOT NULL DEFAULT now(),
  search                  tsvector      GENERATED ALWAYS AS
                          (stepwise.template_search_vector(name, description, tags)) STORED,
  CHECK ((author = 'OFFICIAL') = (owner_organization_id IS NULL)),
  CHECK ((author = 'OFFICIAL') = (slug IS NOT NULL)),
  CHECK (author = 'COMMUNITY' OR is_public)
);
CREATE INDEX templates_search_idx ON stepwise.templates USING gin (search);
-- The catalogue's sorts, within a category and across all.
CREATE INDEX templates_category_rating_idx ON stepwise.templates (category, rating DESC, id);
CREATE INDEX templates_category_popularity_idx ON stepwise.templates (category, popularity DESC, id);
CREATE INDEX templates_popularity_idx ON stepwise.templates (popularity DESC, id);
CREATE INDEX templates_rating_idx ON stepwise.templates (rating DESC, id);
CREATE INDEX templates_owner_idx ON stepwise.templates (owner_organization_id) WHERE owner_organization_id IS NOT NULL;

-- One rating per user and template, changed by rating again. The rater's
-- organization is the row's tenant: an organization sees its own users'
-- ratings only; the averages everyone sees live on the template.
CREATE TABLE stepwise.template_ratings (
  template_id     uuid        NOT NULL REFERENCES stepwise.templates (id) ON DELETE CASCADE,
  organization_id uuid        NOT NULL,
  user_id         uuid        NOT NULL,
  rating          smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (template_id, user_id),
  FOREIGN KEY (organization_id, user_id) REFERENCES stepwise.users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX template_ratings_user_idx ON stepwise.template_ratings (organization_id, user_id);

-- Keeps templates.rating_sum/rating_count in step with the ratings. SECURITY
-- DEFINER: a tenant rates templates it may read but not write (official and
-- other organizations' public ones), so the counter update runs as the
-- migrating login, which the service policy admits.
CREATE FUNCTION stepwise.template_ratings_rollup() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE stepwise.templates SET rating_sum = rating_sum + NEW.rating, rating_count = rating_count + 1 WHERE id = NEW.template_id;
  ELSIF TG_OP = 'UPDATE' THEN
    UPDATE stepwise.templates SET rating_sum = rating_sum + NEW.rating - OLD.rating WHERE id = NEW.template_id;
  ELSE
    UPDATE stepwise.templates SET rating_sum = rating_sum - OLD.rating, rating_count = rating_count - 1 WHERE id = OLD.template_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER template_ratings_rollup AFTER INSERT OR UPDATE OF rating OR DELETE ON stepwise.template_ratings
  FOR EACH ROW EXECUTE FUNCTION stepwise.template_ratings_rollup();

-- One more use of a template that `p_org` may read; returns the new count,
-- or NULL when there is no such template for it. SECURITY DEFINER for the
-- same reason as the rollup; on the tenant path p_org must be the tenant.
CREATE FUNCTION stepwise.count_template_use(p_template uuid, p_org uuid) RETURNS bigint
  LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  UPDATE stepwise.templates SET popularity = popularity + 1
   WHERE id = p_template
     AND (owner_organization_id IS NULL OR is_public OR owner_organization_id = p_org)
     AND p_org = coalesce(nullif(current_setting('stepwise.organization_id', true), ''), p_org::text)::uuid
  RETURNING popularity
$$;

-- Row-level security of the catalogue: read official, public and one's own;
-- write one's own only (author COMMUNITY follows from the CHECKs above).
GRANT SELECT, INSERT, UPDATE, DELETE ON stepwise.templates TO stepwise_tenant;
ALTER TABLE stepwise.templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE stepwise.templates FORCE ROW LEVEL SECURITY;
CREATE POLICY template_read ON stepwise.templates FOR SELECT TO stepwise_tenant
  USING (owner_organization_id IS NULL OR is_public
         OR owner_organization_id = current_setting('stepwise.organization_id')::uuid);
CREATE POLICY template_insert ON stepwise.templates FOR INSERT TO stepwise_tenant
  WITH CHECK (owner_organization_id = current_setting('stepwise.organization_id')::uuid);
CREATE POLICY template_update ON stepwise.templates FOR UPDATE TO stepwise_tenant
  USING (owner_organization_id = current_setting('stepwise.organization_id')::uuid)
  WITH CHECK (owner_organization_id = current_setting('stepwise.organization_id')::uuid);
CREATE POLICY template_delete ON stepwise.templates FOR DELETE TO stepwise_tenant
  USING (owner_organization_id = current_setting('stepwise.organization_id')::uuid);
CREATE POLICY service_all ON stepwise.templates TO stepwise_service USING (true) WITH CHECK (true);

-- template_ratings is an ordinary tenant table.
SELECT stepwise.enable_tenant_rls();
