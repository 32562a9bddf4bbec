import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../src/db/tenant.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import type { Role } from '../../src/store/index.js';
import { OFFICIAL_TEMPLATES, syncOfficialTemplates } from '../../src/templates/index.js';
import { uuidv7 } from '../../src/util/ids.js';
import { client, collectPages, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';

/**
 * The template library through the API on both backends: search and its
 * ranking, filters and sorts, ratings, community templates' visibility
 * across organizations (and row-level security under it), and
 * instantiation: config checked, plan counted, missing integrations named.
 */
let t: TestDb;
let app: FastifyInstance;
let orgA: string;
let orgB: string;
let a: Record<Role, ApiClient>;
let aUsers: Record<Role, { userId: string }>;
let b: ApiClient;
let bOwner: string;

beforeAll(async () => {
  t = await createTestDb();
  expect(await syncOfficialTemplates(t.db)).toEqual({ written: OFFICIAL_TEMPLATES.length, deleted: 0 });
  app = await createTestApp(t.db, undefined, { keyRing: parseKeyRing(generateKeyEntry()), rateLimit: { perSecond: 0, burst: 1 } });
  orgA = (await seedOrg(t.db, 'Templates A')).organizationId;
  const sb = await seedOrg(t.db, 'Templates B');
  orgB = sb.organizationId;
  bOwner = sb.ownerId;
  const keys = await seedRoleKeys(t.db, orgA);
  aUsers = keys;
  a = { VIEWER: client(app, keys.VIEWER.key), MEMBER: client(app, keys.MEMBER.key), ADMIN: client(app, keys.ADMIN.key), OWNER: client(app, keys.OWNER.key) };
  b = client(app, sb.key);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function officialId(slug: string): Promise<string> {
  const { rows } = await t.db.query<{ id: string }>(`SELECT id FROM stepwise.templates WHERE slug = $1`, [slug]);
  return rows[0]!.id;
}

/** A small community template of org A (private), written by its MEMBER. */
async function community(fields: Json): Promise<Json> {
  const res = await a.MEMBER.post('/v1/templates', {
    category: 'CUSTOM',
    settingsSchema: { type: 'object', properties: { url: { type: 'string' } }, required: ['url'] },
    definition: { steps: [{ id: 'call', type: 'http', method: 'POST', url: '[[config.url]]/hook' }] },
    ...fields,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

describe('the official templates', () => {
  it('are synced by slug: a second sync rewrites nothing, a changed or dropped one is fixed', async () => {
    expect(await syncOfficialTemplates(t.db)).toEqual({ written: 0, deleted: 0 });
    await t.db.query(`UPDATE stepwise.templates SET name = 'tampered', popularity = 7 WHERE slug = 'nightly-report'`);
    await t.db.query(
      `INSERT INTO stepwise.templates (id, slug, name, category, definition, author, is_public) VALUES ($1, 'retired-one', 'Retired', 'CUSTOM', '{"steps":[]}', 'OFFICIAL', true)`,
      [uuidv7()],
    );
    expect(await syncOfficialTemplates(t.db)).toEqual({ written: 1, deleted: 1 });
    const { rows } = await t.db.query<{ name: string; popularity: string }>(`SELECT name, popularity::text FROM stepwise.templates WHERE slug = 'nightly-report'`);
    // Content follows the code; what users did with it (popularity) stays.
    expect(rows[0]).toEqual({ name: 'Nightly report', popularity: '7' });
    await t.db.query(`UPDATE stepwise.templates SET popularity = 0 WHERE slug = 'nightly-report'`);
  });

  it('are listed for every organization with their settings schema, and read one by one with their definition', async () => {
    const list = await b.get('/v1/templates?limit=100');
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    const slugs = list.body.items.map((i: Json) => i.slug).filter(Boolean).sort();
    expect(slugs).toEqual(OFFICIAL_TEMPLATES.map((o) => o.slug).sort());
    expect(list.body.items[0].definition).toBeUndefined();
    const one = await b.get(`/v1/templates/${await officialId('draft-email-reply')}`);
    expect(one.body).toMatchObject({ author: 'OFFICIAL', isPublic: true, own: false, requiredIntegrations: ['openai', 'smtp'] });
    expect(one.body.definition.steps.map((s: Json) => s.type)).toEqual(['llm', 'email']);
    expectError(await b.get(`/v1/templates/${uuidv7()}`), 404, 'NOT_FOUND');
  });
});

describe('search', () => {
  it('ranks a template whose name matches above one whose description mentions the word', async () => {
    const byDescription = await community({ name: 'Payment chaser', description: 'Sends a polite nudge for each overdue invoice.' });
    const byName = await community({ name: 'Invoice reminder', description: 'Reminds customers before the due date.' });
    const res = await a.VIEWER.get('/v1/templates?q=invoice');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.items.map((i: Json) => i.id)).toEqual([byName.id, byDescription.id]);
    const [first, second] = res.body.items;
    expect(first.rank).toBeGreaterThan(second.rank);
    // Stemming and tags: "claims" finds the claim status check by its name and tags, first.
    const claims = await a.VIEWER.get('/v1/templates?q=claims%20status');
    expect(claims.body.items[0].slug).toBe('claim-status-check');
    // Another organization does not find A's private templates.
    expect((await b.get('/v1/templates?q=invoice')).body.items).toEqual([]);
  });

  it('filters by category, integration and least rating, and sorts by popularity and rating', async () => {
    const support = await a.VIEWER.get('/v1/templates?category=CUSTOMER_SUPPORT');
    expect(support.body.items.map((i: Json) => i.slug).sort()).toEqual(['document-triage', 'draft-email-reply']);
    const smtp = await a.VIEWER.get('/v1/templates?integration=smtp');
    expect(smtp.body.items.map((i: Json) => i.slug).sort()).toEqual(['draft-email-reply', 'nightly-report']);
    // Optional integrations count too.
    expect((await a.VIEWER.get('/v1/templates?integration=mysql')).body.items.map((i: Json) => i.slug)).toEqual(['nightly-report']);
    expectError(await a.VIEWER.get('/v1/templates?category=GARDENING'), 400, 'VALIDATION');

    await t.db.query(`UPDATE stepwise.templates SET popularity = CASE slug WHEN 'webhook-to-crm-sync' THEN 50 WHEN 'nightly-report' THEN 20 ELSE 0 END WHERE author = 'OFFICIAL'`);
    const popular = await a.VIEWER.get('/v1/templates?sort=popularity&limit=2');
    expect(popular.body.items.map((i: Json) => [i.slug, i.popularity])).toEqual([
      ['webhook-to-crm-sync', 50],
      ['nightly-report', 20],
    ]);
    await a.VIEWER.put(`/v1/templates/${await officialId('approval-gated-refund')}/rating`, { rating: 5 });
    await a.VIEWER.put(`/v1/templates/${await officialId('claim-status-check')}/rating`, { rating: 3 });
    const rated = await a.VIEWER.get('/v1/templates?sort=rating&minRating=3');
    expect(rated.body.items.map((i: Json) => [i.slug, i.rating])).toEqual([
      ['approval-gated-refund', 5],
      ['claim-status-check', 3],
    ]);
    // Paging walks everything once.
    const { items, pages } = await collectPages(a.VIEWER, '/v1/templates?sort=popularity', 3);
    expect(pages).toBeGreaterThan(2);
    expect(new Set(items.map((i: Json) => i.id)).size).toBe(items.length);
    expect(items.length).toBe((await a.VIEWER.get('/v1/templates?limit=100')).body.items.length);
    expectError(await a.VIEWER.get('/v1/templates?cursor=bm9wZQ'), 400, 'VALIDATION');
  });
});

describe('ratings', () => {
  it('one per user, changed by rating again; the average counts every organization', async () => {
    const id = await officialId('daily-bakery-orchestration');
    const first = await a.MEMBER.put(`/v1/templates/${id}/rating`, { rating: 4 });
    expect(first.body).toEqual({ templateId: id, yours: 4, rating: 4, ratingCount: 1 });
    const changed = await a.MEMBER.put(`/v1/templates/${id}/rating`, { rating: 2 });
    expect(changed.body).toEqual({ templateId: id, yours: 2, rating: 2, ratingCount: 1 });
    const other = await b.put(`/v1/templates/${id}/rating`, { rating: 5 });
    expect(other.body).toEqual({ templateId: id, yours: 5, rating: 3.5, ratingCount: 2 });
    expect((await a.VIEWER.get(`/v1/templates/${id}`)).body).toMatchObject({ rating: 3.5, ratingCount: 2 });
    const { rows } = await t.db.query<{ user_id: string; rating: number }>(
      `SELECT user_id, rating FROM stepwise.template_ratings WHERE template_id = $1 ORDER BY rating`,
      [id],
    );
    expect(rows).toEqual([
      { user_id: aUsers.MEMBER.userId, rating: 2 },
      { user_id: bOwner, rating: 5 },
    ]);
    const bad = expectError(await a.MEMBER.put(`/v1/templates/${id}/rating`, { rating: 6 }), 400, 'VALIDATION');
    expect(bad.details.path).toBe('/body/rating');
    expectError(await a.MEMBER.put(`/v1/templates/${uuidv7()}/rating`, { rating: 3 }), 404, 'NOT_FOUND');
  });
});

describe('community templates', () => {
  it('are private to their organization until an ADMIN publishes them; only the owner changes them', async () => {
    const tpl = await community({ name: 'Lead router', description: 'Routes leads', tags: ['leads'] });
    expect(tpl).toMatchObject({ author: 'COMMUNITY', isPublic: false, own: true, slug: null });
    expectError(await b.get(`/v1/templates/${tpl.id}`), 404, 'NOT_FOUND');
    expectError(await b.put(`/v1/templates/${tpl.id}/rating`, { rating: 5 }), 404, 'NOT_FOUND');
    expectError(await b.post(`/v1/templates/${tpl.id}/instantiate`, { name: 'x', config: { url: 'http://x' } }), 404, 'NOT_FOUND');

    // Publishing needs ADMIN.
    expectError(await a.MEMBER.post(`/v1/templates/${tpl.id}/publish`), 403, 'FORBIDDEN');
    const published = await a.ADMIN.post(`/v1/templates/${tpl.id}/publish`);
    expect(published.status, JSON.stringify(published.body)).toBe(200);
    expect(published.body.isPublic).toBe(true);
    const seen = await b.get(`/v1/templates/${tpl.id}`);
    expect(seen.body).toMatchObject({ id: tpl.id, own: false, isPublic: true });
    expect((await b.get('/v1/templates?q=lead%20router')).body.items.map((i: Json) => i.id)).toEqual([tpl.id]);

    // Others may read, rate and use it, not change it; a public one is changed by an ADMIN only.
    expectError(await b.request('PATCH', `/v1/templates/${tpl.id}`, { body: { name: 'mine now' } }), 403, 'FORBIDDEN');
    expectError(await b.del(`/v1/templates/${tpl.id}`), 403, 'FORBIDDEN');
    expectError(await b.request('PATCH', `/v1/templates/${await officialId('nightly-report')}`, { body: { name: 'x' } }), 403, 'FORBIDDEN');
    expectError(await a.MEMBER.request('PATCH', `/v1/templates/${tpl.id}`, { body: { name: 'Lead router 2' } }), 403, 'FORBIDDEN');
    const renamed = await a.ADMIN.request('PATCH', `/v1/templates/${tpl.id}`, { body: { name: 'Lead router 2' } });
    expect(renamed.body.name).toBe('Lead router 2');

    const unpublished = await a.ADMIN.post(`/v1/templates/${tpl.id}/unpublish`);
    expect(unpublished.body.isPublic).toBe(false);
    expectError(await b.get(`/v1/templates/${tpl.id}`), 404, 'NOT_FOUND');
    expect((await a.MEMBER.del(`/v1/templates/${tpl.id}`)).status).toBe(204);
    expectError(await a.MEMBER.get(`/v1/templates/${tpl.id}`), 404, 'NOT_FOUND');
  });

  it('refuse a placeholder the settings schema does not declare, and a settings schema that does not compile', async () => {
    const bad = await a.MEMBER.post('/v1/templates', {
      name: 'typo',
      settingsSchema: { type: 'object', properties: { url: { type: 'string' } } },
      definition: { steps: [{ id: 'call', type: 'http', method: 'GET', url: '[[config.ulr]]' }] },
    });
    expect(expectError(bad, 400, 'VALIDATION').details.path).toBe('/body/definition');
    const schema = await a.MEMBER.post('/v1/templates', {
      name: 'bad schema',
      settingsSchema: { type: 'object', properties: { url: { type: 'no-such-type' } } },
      definition: { steps: [{ id: 'n', type: 'noop' }] },
    });
    expect(expectError(schema, 400, 'VALIDATION').details.path).toBe('/body/settingsSchema');
    expect(expectError(await a.VIEWER.post('/v1/templates', { name: 'v', definition: { steps: [{ id: 'n', type: 'noop' }] } }), 403, 'FORBIDDEN')).toBeTruthy();
  });

  it('row-level security: a tenant reads official, public and own rows, and writes only its own', async () => {
    const priv = await community({ name: 'A private one' });
    await withTenant(t.db, orgB, async (tx) => {
      // No organization filter at all: the policies alone decide.
      const { rows } = await tx.query<{ id: string; owner: string | null; is_public: boolean }>(
        `SELECT id, owner_organization_id AS owner, is_public FROM stepwise.templates`,
      );
      expect(rows.some((r) => r.id === priv.id)).toBe(false);
      expect(rows.every((r) => r.owner === null || r.is_public || r.owner === orgB)).toBe(true);
      expect(rows.filter((r) => r.owner === null)).toHaveLength(OFFICIAL_TEMPLATES.length);
      const changed = await tx.query(`UPDATE stepwise.templates SET name = 'hijacked' WHERE owner_organization_id IS NULL OR id = $1`, [priv.id]);
      expect(changed.rowCount).toBe(0);
    });
    await expect(
      withTenant(t.db, orgB, (tx) =>
        tx.query(
          `INSERT INTO stepwise.templates (id, owner_organization_id, name, category, definition, author) VALUES ($1, $2, 'planted', 'CUSTOM', '{"steps":[]}', 'COMMUNITY')`,
          [uuidv7(), orgA],
        ),
      ),
    ).rejects.toThrow(/row-level security/);
    await expect(
      withTenant(t.db, orgB, (tx) =>
        tx.query(`INSERT INTO stepwise.templates (id, slug, name, category, definition, author, is_public) VALUES ($1, 'fake-official', 'x', 'CUSTOM', '{"steps":[]}', 'OFFICIAL', true)`, [uuidv7()]),
      ),
    ).rejects.toThrow();
  });
});

describe('instantiate', () => {
  async function workflowCount(org: string): Promise<number> {
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.workflows WHERE organization_id = $1`, [org]);
    return rows[0]!.n;
  }

  async function popularity(id: string): Promise<number> {
    const { rows } = await t.db.query<{ p: string }>(`SELECT popularity::text AS p FROM stepwise.templates WHERE id = $1`, [id]);
    return Number(rows[0]!.p);
  }

  it('refuses a config the settings schema refuses, naming the field, and creates nothing', async () => {
    const id = await officialId('payer-eligibility-check');
    const before = await workflowCount(orgA);
    const pop = await popularity(id);
    const missing = expectError(await a.ADMIN.post(`/v1/templates/${id}/instantiate`, { name: 'elig', config: {} }), 400, 'VALIDATION');
    expect(missing.details.path).toBe('/body/config/portalOrigin');
    const wrong = expectError(
      await a.ADMIN.post(`/v1/templates/${id}/instantiate`, { name: 'elig', config: { portalOrigin: 'https://p.example/with/path' } }),
      400,
      'VALIDATION',
    );
    expect(wrong.details.path).toBe('/body/config/portalOrigin');
    const extra = expectError(
      await a.ADMIN.post(`/v1/templates/${id}/instantiate`, { name: 'elig', config: { portalOrigin: 'https://p.example', colour: 'red' } }),
      400,
      'VALIDATION',
    );
    expect(extra.details.path).toBe('/body/config/colour');
    // A MEMBER may not create workflows, so not from templates either.
    expectError(await a.MEMBER.post(`/v1/templates/${id}/instantiate`, { name: 'elig', config: { portalOrigin: 'https://p.example' } }), 403, 'FORBIDDEN');
    expect(await workflowCount(orgA)).toBe(before);
    expect(await popularity(id)).toBe(pop);
  });

  it('creates the workflow with the config filled in, counts a use, and names the integrations still missing', async () => {
    const id = await officialId('draft-email-reply');
    const pop = await popularity(id);
    const res = await a.ADMIN.post(`/v1/templates/${id}/instantiate`, { name: 'Support replies', config: { companyName: 'Acme Bakery', model: 'gpt-4o' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.missingIntegrations).toEqual(['openai', 'smtp']);
    expect(res.body.config).toEqual({ companyName: 'Acme Bakery', model: 'gpt-4o', tone: 'friendly and concise', llmCredential: 'openai', smtpCredential: 'smtp' });
    const wf = res.body.workflow;
    expect(wf).toMatchObject({ name: 'Support replies', category: 'CUSTOMER_SUPPORT', version: 1, status: 'ACTIVE' });
    const [draft, send] = wf.definition.steps;
    expect(draft).toMatchObject({ credential: 'openai', model: 'gpt-4o' });
    expect(draft.system).toContain('for Acme Bakery. Be friendly and concise.');
    // Run-time templates are left exactly as written.
    expect(send.to).toBe('{{ input.email.from }}');
    expect(JSON.stringify(wf.definition)).not.toContain('[[config.');
    expect((await a.ADMIN.get(`/v1/workflows/${wf.id}`)).status).toBe(200);
    expect(await popularity(id)).toBe(pop + 1);

    const cred = await a.ADMIN.post('/v1/credentials', { provider: 'smtp', name: 'smtp', secret: { host: '127.0.0.1', port: 2525, from: 'a@example.com' } });
    expect(cred.status, JSON.stringify(cred.body)).toBe(201);
    const again = await a.ADMIN.post(`/v1/templates/${id}/instantiate`, { name: 'Support replies 2', config: { companyName: 'Acme' } });
    expect(again.body.missingIntegrations).toEqual(['openai']);
    expect(await popularity(id)).toBe(pop + 2);
  });

  it('a config the schema accepts but that makes the definition invalid is refused as POST /v1/workflows refuses it', async () => {
    const tpl = await community({
      name: 'Loose method',
      settingsSchema: { type: 'object', properties: { method: { type: 'string' } }, required: ['method'] },
      definition: { steps: [{ id: 'call', type: 'http', method: { $config: 'method' }, url: 'https://example.com/x' }] },
    });
    const before = await workflowCount(orgA);
    const res = expectError(await a.ADMIN.post(`/v1/templates/${tpl.id}/instantiate`, { name: 'loose', config: { method: 'FETCH' } }), 400, 'VALIDATION');
    expect(res.details.path).toBe('/definition/steps/0/method');
    expect(await workflowCount(orgA)).toBe(before);
    expect(await popularity(tpl.id)).toBe(0);
    const ok = await a.ADMIN.post(`/v1/templates/${tpl.id}/instantiate`, { name: 'loose', config: { method: 'PUT' } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.workflow.definition.steps[0].method).toBe('PUT');
    expect(ok.body.missingIntegrations).toEqual([]);
    expect(await popularity(tpl.id)).toBe(1);
  });

  it('is counted against the plan: 402 past the workflows limit, nothing created, no use counted', async () => {
    const starter = await seedOrg(t.db, 'Starter', 'STARTER');
    const api = client(app, starter.key);
    const id = await officialId('webhook-to-crm-sync');
    const config = { crmBaseUrl: 'https://crm.example.com/api' };
    for (let i = 0; i < 5; i++) {
      const ok = await api.post(`/v1/templates/${id}/instantiate`, { name: `crm ${i}`, config });
      expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    }
    const pop = await popularity(id);
    const refused = expectError(await api.post(`/v1/templates/${id}/instantiate`, { name: 'crm 6', config }), 402, 'PLAN_LIMIT');
    expect(refused.details).toMatchObject({ resource: 'workflows', limit: 5, current: 5 });
    expect(await workflowCount(starter.organizationId)).toBe(5);
    expect(await popularity(id)).toBe(pop);
  });
});
