import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { cliTarget, runCli, type CliTarget } from '../helpers/cli.js';
import { seedOrg } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';

/**
 * Issue 15: a Chrome DevTools Recorder export becomes a workflow of one
 * browser step (POST /v1/workflows/import/chrome-recorder and `stepwise
 * workflow import --chrome-recorder`), and the browser step's definition is
 * checked like any other through POST /v1/workflows.
 */

const IMPORT = '/v1/workflows/import/chrome-recorder';

/**
 * What Chrome's Recorder panel exports for a portal session, written the way
 * it writes them (field order, `target: "main"`, `deviceType`/`duration` on
 * clicks, selector alternatives as chains of aria/, css, xpath/, pierce/ and
 * text/ parts), plus a flow-wide timeout and a Stepwise custom step.
 */
const RECORDING = {
  title: 'Download the claims report',
  timeout: 8000,
  steps: [
    { type: 'setViewport', width: 1366, height: 768, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false },
    {
      type: 'navigate',
      url: 'https://login.example-portal.com/signin?next=%2Fclaims',
      assertedEvents: [{ type: 'navigation', url: 'https://login.example-portal.com/signin?next=%2Fclaims', title: 'Sign in · Example Portal' }],
    },
    {
      type: 'click',
      target: 'main',
      selectors: [['aria/Email address'], ['#email'], ['xpath///*[@id="email"]'], ['pierce/#email'], ['text/Email address']],
      offsetX: 112.5,
      offsetY: 14,
    },
    {
      type: 'change',
      value: '{{ input.user }}',
      selectors: [['aria/Email address'], ['#email'], ['xpath///*[@id="email"]'], ['pierce/#email']],
      target: 'main',
    },
    { type: 'keyDown', target: 'main', key: 'Tab' },
    { type: 'keyUp', key: 'Tab', target: 'main' },
    { type: 'change', value: 'correct horse', selectors: [['aria/Password'], ['#password'], ['xpath///*[@id="password"]'], ['pierce/#password']], target: 'main' },
    {
      type: 'click',
      target: 'main',
      selectors: [
        ['aria/Sign in[role="button"]'],
        ['form.login > button.primary'],
        ['xpath///*[@id="app"]/main/form/button'],
        ['pierce/form.login > button.primary'],
        ['text/Sign in'],
      ],
      offsetX: 40,
      offsetY: 12,
      deviceType: 'mouse',
      duration: 83,
      assertedEvents: [{ type: 'navigation', url: 'https://portal.example-portal.com:8443/claims', title: 'Claims' }],
    },
    { type: 'waitForElement', target: 'main', selectors: [['claims-table', 'tbody tr'], ['pierce/tbody tr']], count: 1, operator: '>=', visible: true, timeout: 15000 },
    { type: 'scroll', target: 'main', x: 0, y: 640 },
    { type: 'scroll', target: 'main', selectors: [['#claims-list']], x: 0, y: 1200 },
    { type: 'hover', target: 'main', selectors: [['aria/Export'], ['#export']] },
    { type: 'doubleClick', target: 'main', frame: [0], selectors: [['#report-cell']], offsetX: 3, offsetY: 3, button: 'primary', deviceType: 'mouse' },
    { type: 'navigate', url: 'https://portal.example-portal.com:8443/claims/export?format=csv' },
    { type: 'navigate', url: 'https://login.example-portal.com/signout' },
    {
      type: 'customStep',
      target: 'main',
      name: 'stepwise.extract',
      parameters: { selectors: [['aria/Claims[role="table"]'], ['#claims']], as: 'table', output: 'claims' },
    },
  ],
} as const;

/**
 * The recording's steps as a browser step holds them, written out by hand:
 * `target`, `deviceType` and `duration` dropped, the flow-wide timeout on
 * every step that names none (the waitForElement keeps its own).
 */
const ACTIONS = [
  { type: 'setViewport', width: 1366, height: 768, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false, timeout: 8000 },
  {
    type: 'navigate',
    url: 'https://login.example-portal.com/signin?next=%2Fclaims',
    assertedEvents: [{ type: 'navigation', url: 'https://login.example-portal.com/signin?next=%2Fclaims', title: 'Sign in · Example Portal' }],
    timeout: 8000,
  },
  {
    type: 'click',
    selectors: [['aria/Email address'], ['#email'], ['xpath///*[@id="email"]'], ['pierce/#email'], ['text/Email address']],
    offsetX: 112.5,
    offsetY: 14,
    timeout: 8000,
  },
  { type: 'change', value: '{{ input.user }}', selectors: [['aria/Email address'], ['#email'], ['xpath///*[@id="email"]'], ['pierce/#email']], timeout: 8000 },
  { type: 'keyDown', key: 'Tab', timeout: 8000 },
  { type: 'keyUp', key: 'Tab', timeout: 8000 },
  { type: 'change', value: 'correct horse', selectors: [['aria/Password'], ['#password'], ['xpath///*[@id="password"]'], ['pierce/#password']], timeout: 8000 },
  {
    type: 'click',
    selectors: [
      ['aria/Sign in[role="button"]'],
      ['form.login > button.primary'],
      ['xpath///*[@id="app"]/main/form/button'],
      ['pierce/form.login > button.primary'],
      ['text/Sign in'],
    ],
    offsetX: 40,
    offsetY: 12,
    assertedEvents: [{ type: 'navigation', url: 'https://portal.example-portal.com:8443/claims', title: 'Claims' }],
    timeout: 8000,
  },
  { type: 'waitForElement', selectors: [['claims-table', 'tbody tr'], ['pierce/tbody tr']], count: 1, operator: '>=', visible: true, timeout: 15000 },
  { type: 'scroll', x: 0, y: 640, timeout: 8000 },
  { type: 'scroll', selectors: [['#claims-list']], x: 0, y: 1200, timeout: 8000 },
  { type: 'hover', selectors: [['aria/Export'], ['#export']], timeout: 8000 },
  { type: 'doubleClick', frame: [0], selectors: [['#report-cell']], offsetX: 3, offsetY: 3, button: 'primary', timeout: 8000 },
  { type: 'navigate', url: 'https://portal.example-portal.com:8443/claims/export?format=csv', timeout: 8000 },
  { type: 'navigate', url: 'https://login.example-portal.com/signout', timeout: 8000 },
  {
    type: 'customStep',
    name: 'stepwise.extract',
    parameters: { selectors: [['aria/Claims[role="table"]'], ['#claims']], as: 'table', output: 'claims' },
    timeout: 8000,
  },
];

/** The navigations' origins, first seen first, each once. */
const ORIGINS = ['https://login.example-portal.com', 'https://portal.example-portal.com:8443'];

/** A deep copy of the recording to spoil. */
function recording(): Json {
  return structuredClone(RECORDING) as Json;
}

/** The recording with step `i` replaced (or removed, with `undefined`). */
function withStep(i: number, step: Json): Json {
  const r = recording();
  r.steps[i] = step;
  return r;
}

/** Workflows (and their versions) in the whole database: an import that fails must leave both as they were. */
async function counts(db: Db): Promise<{ workflows: number; versions: number }> {
  const { rows } = await db.query<{ workflows: number; versions: number }>(
    `SELECT (SELECT count(*) FROM stepwise.workflows)::int AS workflows, (SELECT count(*) FROM stepwise.workflow_versions)::int AS versions`,
  );
  return rows[0]!;
}

function browserStep(wf: Json): Json {
  expect(wf.definition.steps).toHaveLength(1);
  return wf.definition.steps[0];
}

describe('POST /v1/workflows/import/chrome-recorder', () => {
  let t: TestDb;
  let app: FastifyInstance;
  let api: ApiClient;
  let as: Record<'VIEWER' | 'MEMBER' | 'ADMIN' | 'OWNER', ApiClient>;

  beforeAll(async () => {
    t = await createTestDb();
    app = await createTestApp(t.db);
    const org = await seedOrg(t.db, 'Recorder Org');
    api = client(app, org.key);
    const roles = await seedRoleKeys(t.db, org.organizationId);
    as = {
      VIEWER: client(app, roles.VIEWER.key),
      MEMBER: client(app, roles.MEMBER.key),
      ADMIN: client(app, roles.ADMIN.key),
      OWNER: client(app, roles.OWNER.key),
    };
  });

  afterAll(async () => {
    await app?.close();
    await t?.close();
  });

  it('a Recorder export → 201: one browser step whose actions are its steps, allowed the origins it navigates to, named by its title', async () => {
    const res = await api.post(IMPORT, { recording: RECORDING });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const wf = res.body;
    expect(wf).toMatchObject({ name: 'Download the claims report', status: 'ACTIVE', version: 1 });
    expect(browserStep(wf)).toEqual({ id: 'browser', type: 'browser', allowOrigins: ORIGINS, actions: ACTIONS });

    // Stored as answered: the workflow reads back the same, and it is listed.
    const read = await api.get(`/v1/workflows/${wf.id}`);
    expect(read.status).toBe(200);
    expect(read.body.definition).toEqual(wf.definition);
    expect(read.body.name).toBe('Download the claims report');
    const list = await api.get('/v1/workflows?limit=100');
    expect(list.body.items.map((w: Json) => w.id)).toContain(wf.id);
  });

  it('honors an explicit name and allowOrigins (instead of the title and the navigations)', async () => {
    const allowOrigins = ['https://portal.example-portal.com:8443', 'https://sso.example.net'];
    const res = await api.post(IMPORT, { name: 'Nightly claims', recording: RECORDING, allowOrigins });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.name).toBe('Nightly claims');
    expect(browserStep(res.body)).toEqual({ id: 'browser', type: 'browser', allowOrigins, actions: ACTIONS });
  });

  it('a recording that navigates nowhere is accepted when allowOrigins is given; an untitled one gets a default name', async () => {
    const r = { steps: [{ type: 'click', target: 'main', selectors: [['#go']], offsetX: 1, offsetY: 1 }] };
    const res = await api.post(IMPORT, { recording: r, allowOrigins: ['http://127.0.0.1:8123'] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.name).toEqual(expect.any(String));
    expect(res.body.name.trim()).not.toBe('');
    expect(browserStep(res.body)).toEqual({
      id: 'browser',
      type: 'browser',
      allowOrigins: ['http://127.0.0.1:8123'],
      actions: [{ type: 'click', selectors: [['#go']], offsetX: 1, offsetY: 1 }],
    });
  });

  describe('an invalid export → 400 naming the step index and field, and nothing created', () => {
    const nav = { type: 'navigate', url: 'https://portal.example-portal.com/' };
    const cases: { name: string; body: () => Json; path: string }[] = [
      {
        name: 'a click without selectors',
        body: () => withStep(2, { type: 'click', target: 'main', offsetX: 1, offsetY: 1 }),
        path: '/recording/steps/2/selectors',
      },
      { name: 'an unknown step type', body: () => withStep(4, { type: 'dragAndDrop', target: 'main', selectors: [['#a']] }), path: '/recording/steps/4/type' },
      { name: 'a step without a type', body: () => withStep(3, { target: 'main', selectors: [['#a']], value: 'x' }), path: '/recording/steps/3/type' },
      {
        name: 'a selector that is not a string or a chain of strings',
        body: () => withStep(2, { type: 'click', target: 'main', selectors: [{ css: '#email' }], offsetX: 1, offsetY: 1 }),
        path: '/recording/steps/2/selectors/0',
      },
      {
        name: 'a chain holding a number',
        body: () => withStep(2, { type: 'click', target: 'main', selectors: [['#email', 7]], offsetX: 1, offsetY: 1 }),
        path: '/recording/steps/2/selectors/0',
      },
      { name: 'selectors as a bare string', body: () => withStep(11, { type: 'hover', selectors: '#export' }), path: '/recording/steps/11/selectors' },
      {
        name: 'a step in another target (a popup)',
        body: () => withStep(7, { type: 'click', target: 'https://portal.example-portal.com/popup', selectors: [['#ok']], offsetX: 1, offsetY: 1 }),
        path: '/recording/steps/7/target',
      },
      { name: 'an empty steps list', body: () => ({ title: 'nothing', steps: [] }), path: '/recording/steps' },
      { name: 'steps that are not an array', body: () => ({ title: 'odd', steps: { 0: nav } }), path: '/recording/steps' },
      { name: 'no steps at all', body: () => ({ title: 'none' }), path: '/recording/steps' },
      { name: 'a step that is not an object', body: () => withStep(5, 'keyUp Tab'), path: '/recording/steps/5' },
      {
        name: 'a customStep of an unknown name',
        body: () => withStep(15, { type: 'customStep', target: 'main', name: 'stepwise.teleport', parameters: {} }),
        path: '/recording/steps/15/name',
      },
      {
        name: 'a customStep with parameters it does not take (missing output)',
        body: () => withStep(15, { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: [['#claims']], as: 'table' } }),
        path: '/recording/steps/15/parameters/output',
      },
      {
        name: 'a customStep with an unknown parameter',
        body: () => withStep(15, { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: [['#claims']], output: 'claims', via: 'ocr' } }),
        path: '/recording/steps/15/parameters/via',
      },
      {
        name: 'a customStep whose output is not a name',
        body: () => withStep(15, { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: [['#claims']], output: 'the claims' } }),
        path: '/recording/steps/15/parameters/output',
      },
      { name: 'more than 200 steps', body: () => ({ title: 'long', steps: Array.from({ length: 201 }, () => nav) }), path: '/recording/steps' },
      { name: 'a navigate without url', body: () => withStep(1, { type: 'navigate', assertedEvents: [] }), path: '/recording/steps/1/url' },
      { name: 'a step timeout over 60 s', body: () => withStep(8, { type: 'waitForElement', selectors: [['#x']], timeout: 60_001 }), path: '/recording/steps/8/timeout' },
      { name: 'a field the step does not take', body: () => withStep(4, { type: 'keyDown', key: 'Tab', modifiers: 2 }), path: '/recording/steps/4/modifiers' },
    ];

    for (const c of cases) {
      it(c.name, async () => {
        const before = await counts(t.db);
        const err = expectError(await api.post(IMPORT, { recording: c.body() }), 400, 'VALIDATION');
        expect(err.details.path).toBe(c.path);
        expect(err.message).toContain(c.path);
        expect(await counts(t.db)).toEqual(before);
      });
    }

    it('exactly 200 steps is accepted (the limit is inclusive)', async () => {
      const res = await api.post(IMPORT, { recording: { title: 'two hundred', steps: Array.from({ length: 200 }, () => nav) } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(browserStep(res.body).actions).toHaveLength(200);
      expect(browserStep(res.body).allowOrigins).toEqual(['https://portal.example-portal.com']);
    });

    it('a recording without any navigation and no allowOrigins → 400 naming /allowOrigins', async () => {
      const before = await counts(t.db);
      const r = { title: 'clicks only', steps: [{ type: 'click', selectors: [['#go']] }, { type: 'keyDown', key: 'Enter' }] };
      const err = expectError(await api.post(IMPORT, { recording: r }), 400, 'VALIDATION');
      expect(err.details.path).toBe('/allowOrigins');
      expect(err.message).toContain('/allowOrigins');
      expect(await counts(t.db)).toEqual(before);
    });

    it('a navigate whose url is not an absolute URL → 400 naming it, not 500', async () => {
      const before = await counts(t.db);
      const err = expectError(await api.post(IMPORT, { recording: { steps: [{ type: 'navigate', url: 'portal/login' }] } }), 400, 'VALIDATION');
      expect(err.details.path).toBe('/recording/steps/0/url');
      const templated = await api.post(IMPORT, { recording: { steps: [{ type: 'navigate', url: '{{ input.url }}' }] } });
      expect(templated.status).toBe(400);
      expect(await counts(t.db)).toEqual(before);
    });

    it('a body without a recording, or with one that is not an object → 400 naming it', async () => {
      const before = await counts(t.db);
      expect(expectError(await api.post(IMPORT, { name: 'x' }), 400, 'VALIDATION').details.path).toMatch(/recording/);
      expect(expectError(await api.post(IMPORT, { recording: JSON.stringify(RECORDING) }), 400, 'VALIDATION').details.path).toMatch(/recording/);
      expect(expectError(await api.post(IMPORT, { recording: [RECORDING] }), 400, 'VALIDATION').details.path).toMatch(/recording/);
      expect(await counts(t.db)).toEqual(before);
    });
  });

  it('permissions: VIEWER and MEMBER keys (no workflows.manage) → 403 and nothing created; ADMIN may import', async () => {
    const before = await counts(t.db);
    for (const role of ['VIEWER', 'MEMBER'] as const) {
      expectError(await as[role].post(IMPORT, { recording: RECORDING }), 403, 'FORBIDDEN');
      // Refused before the body is looked at: an invalid one is 403 too, not 400.
      expectError(await as[role].post(IMPORT, { recording: { steps: [] } }), 403, 'FORBIDDEN');
    }
    expect(await counts(t.db)).toEqual(before);
    const res = await as.ADMIN.post(IMPORT, { recording: RECORDING });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(await counts(t.db)).toEqual({ workflows: before.workflows + 1, versions: before.versions + 1 });
    expectError(await client(app, undefined).post(IMPORT, { recording: RECORDING }), 401, 'UNAUTHORIZED');
  });

  describe('the browser step through POST /v1/workflows', () => {
    /** A valid definition of a step before a browser step, changed by `change`. */
    function definition(change: (step: Json) => void): Json {
      const step: Json = {
        id: 'portal',
        type: 'browser',
        session: 'portal',
        allowOrigins: ['https://portal.example-portal.com'],
        timeoutMs: 10_000,
        actions: [
          { type: 'navigate', url: 'https://portal.example-portal.com/' },
          { type: 'click', selectors: [['#submit']], sideEffect: true, verify: [['#done']] },
        ],
      };
      change(step);
      return { steps: [{ id: 'first', type: 'noop' }, step] };
    }

    it('a valid browser step is accepted (the limits are inclusive)', async () => {
      const res = await api.post('/v1/workflows', {
        name: 'portal',
        definition: definition((s) => {
          s.timeoutMs = 60_000;
          s.session = 'a'.repeat(64);
          s.actions = [...Array.from({ length: 199 }, () => ({ type: 'navigate', url: 'https://portal.example-portal.com/', timeout: 60_000 })), s.actions[1]];
          s.allowOrigins = ['https://portal.example-portal.com', 'http://127.0.0.1:8123', 'http://[::1]:8080'];
        }),
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.definition.steps[1].actions).toHaveLength(200);
    });

    const invalid: { name: string; change: (s: Json) => void; path: string }[] = [
      {
        name: 'verify without sideEffect',
        change: (s) => {
          s.actions[1] = { type: 'click', selectors: [['#submit']], verify: [['#done']] };
        },
        path: '/definition/steps/1/actions/1/verify',
      },
      {
        name: 'verify with sideEffect false',
        change: (s) => {
          s.actions[1].sideEffect = false;
        },
        path: '/definition/steps/1/actions/1/verify',
      },
      { name: 'an allowed origin with a path', change: (s) => (s.allowOrigins = ['https://portal.example-portal.com/claims']), path: '/definition/steps/1/allowOrigins/0' },
      { name: 'an allowed origin with a trailing slash', change: (s) => (s.allowOrigins = ['https://ok.example.com', 'https://portal.example-portal.com/']), path: '/definition/steps/1/allowOrigins/1' },
      { name: 'an allowed origin of another scheme (ftp)', change: (s) => (s.allowOrigins = ['ftp://portal.example-portal.com']), path: '/definition/steps/1/allowOrigins/0' },
      { name: 'an allowed origin of another scheme (file)', change: (s) => (s.allowOrigins = ['file:///etc/passwd']), path: '/definition/steps/1/allowOrigins/0' },
      { name: 'no allowed origins', change: (s) => (s.allowOrigins = []), path: '/definition/steps/1/allowOrigins' },
      { name: 'allowOrigins missing', change: (s) => delete s.allowOrigins, path: '/definition/steps/1/allowOrigins' },
      {
        name: 'more than 200 actions',
        change: (s) => (s.actions = Array.from({ length: 201 }, () => ({ type: 'navigate', url: 'https://portal.example-portal.com/' }))),
        path: '/definition/steps/1/actions',
      },
      { name: 'no actions', change: (s) => (s.actions = []), path: '/definition/steps/1/actions' },
      { name: 'an action timeout over 60000', change: (s) => (s.actions[0].timeout = 60_001), path: '/definition/steps/1/actions/0/timeout' },
      { name: 'a session name with a space', change: (s) => (s.session = 'my portal'), path: '/definition/steps/1/session' },
      { name: 'a session name with a slash', change: (s) => (s.session = 'portal/1'), path: '/definition/steps/1/session' },
      { name: 'a session name over 64 characters', change: (s) => (s.session = 'a'.repeat(65)), path: '/definition/steps/1/session' },
      { name: 'an empty session name', change: (s) => (s.session = ''), path: '/definition/steps/1/session' },
      { name: 'timeoutMs over 60000', change: (s) => (s.timeoutMs = 60_001), path: '/definition/steps/1/timeoutMs' },
      { name: 'timeoutMs of 0', change: (s) => (s.timeoutMs = 0), path: '/definition/steps/1/timeoutMs' },
      { name: 'an action of an unknown type', change: (s) => (s.actions[0] = { type: 'teleport' }), path: '/definition/steps/1/actions/0/type' },
      { name: 'a click without selectors', change: (s) => (s.actions[1] = { type: 'click' }), path: '/definition/steps/1/actions/1/selectors' },
    ];

    for (const c of invalid) {
      it(`${c.name} → 400 naming ${c.path}, nothing created`, async () => {
        const before = await counts(t.db);
        const err = expectError(await api.post('/v1/workflows', { name: 'portal', definition: definition(c.change) }), 400, 'VALIDATION');
        expect(err.details.path).toBe(c.path);
        expect(err.message).toContain(c.path);
        expect(await counts(t.db)).toEqual(before);
      });
    }
  });
});

// Each CLI call is a process that opens the database (~2 s on PGlite idle, 10-20 s on a loaded machine).
describe('stepwise workflow import --chrome-recorder', { timeout: 600_000 }, () => {
  let cliDb: CliTarget;
  const target: string[] = [];
  let key: string;
  let memberKey: string;
  const withDb = <T>(fn: (db: Db) => Promise<T>): Promise<T> => cliDb.withDb(fn);

  async function file(name: string, text: string): Promise<string> {
    const path = join(cliDb.dir, name);
    await writeFile(path, text);
    return path;
  }

  beforeAll(async () => {
    cliDb = await cliTarget('stepwise-cli-recorder-');
    target.push(...cliDb.args);
    const created = await runCli(['org', 'create', '--name', 'Recorder CLI Org', '--plan', 'ENTERPRISE', ...target]);
    expect(created.code, created.stderr).toBe(0);
    const org = JSON.parse(created.stdout) as { organizationId: string; apiKey: string };
    key = org.apiKey;
    memberKey = await withDb(async (db) => (await seedRoleKeys(db, org.organizationId)).MEMBER.key);
  }, 300_000);

  afterAll(async () => {
    await cliDb?.close();
  });

  it('prints the workflow as JSON and exits 0; --name and --allow-origin are honored', async () => {
    const path = await file('claims.json', JSON.stringify(RECORDING, null, 2));
    const res = await runCli(['workflow', 'import', '--chrome-recorder', path, '--key', key, ...target]);
    expect(res.code, res.stderr).toBe(0);
    const wf = JSON.parse(res.stdout) as Json;
    expect(wf).toMatchObject({ id: expect.any(String), name: 'Download the claims report', status: 'ACTIVE', version: 1 });
    expect(browserStep(wf)).toEqual({ id: 'browser', type: 'browser', allowOrigins: ORIGINS, actions: ACTIONS });

    const named = await runCli([
      'workflow', 'import', '--chrome-recorder', path, '--name', 'Nightly claims', '--key', key, ...target,
      '--allow-origin', 'https://portal.example-portal.com:8443', 'https://sso.example.net',
    ]);
    expect(named.code, named.stderr).toBe(0);
    const wf2 = JSON.parse(named.stdout) as Json;
    expect(wf2.name).toBe('Nightly claims');
    expect(browserStep(wf2).allowOrigins).toEqual(['https://portal.example-portal.com:8443', 'https://sso.example.net']);

    // Both are in the database, as printed.
    await withDb(async (db) => {
      const { rows } = await db.query<{ id: string; name: string }>(`SELECT id, name FROM stepwise.workflows ORDER BY id`);
      expect(rows.map((r) => [r.id, r.name])).toEqual([
        [wf.id, 'Download the claims report'],
        [wf2.id, 'Nightly claims'],
      ]);
    });
  });

  it('a file that is not JSON, a missing file, an invalid export, a key without workflows.manage: a message on stderr, exit 1, nothing created', async () => {
    const before = await withDb(counts);
    const bad = async (args: string[], ...messages: string[]) => {
      const res = await runCli(['workflow', 'import', ...args, ...target]);
      expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(1);
      expect(res.stdout).toBe('');
      for (const m of messages) expect(res.stderr).toContain(m);
      // A message, not a stack trace.
      expect(res.stderr).not.toMatch(/\n\s+at /);
    };
    const notJson = await file('not-json.json', '{"title": "half a recording", "steps": [');
    await bad(['--chrome-recorder', notJson, '--key', key], notJson, 'not JSON');
    const missing = join(cliDb.dir, 'no-such-recording.json');
    await bad(['--chrome-recorder', missing, '--key', key], missing, 'ENOENT');
    const invalid = await file('invalid.json', JSON.stringify(withStep(2, { type: 'click', target: 'main', offsetX: 1, offsetY: 1 })));
    await bad(['--chrome-recorder', invalid, '--key', key], '/recording/steps/2/selectors', 'is required');
    const nowhere = await file('nowhere.json', JSON.stringify({ title: 't', steps: [{ type: 'click', selectors: [['#go']] }] }));
    await bad(['--chrome-recorder', nowhere, '--key', key], '/allowOrigins');
    const good = await file('good.json', JSON.stringify(RECORDING));
    await bad(['--chrome-recorder', good, '--key', memberKey], 'workflows.manage');
    expect(await withDb(counts)).toEqual(before);
  });
});
