import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { credentialResolver } from '../../src/security/credentials.js';
import { Worker } from '../../src/engine/index.js';
import { rateLimitService } from '../../src/engine/rate-limits.js';
import { providerBucket } from '../../src/engine/steps/llm-call.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, waitForJob, waitForStatus, workerConfig } from '../helpers/fixtures.js';
import { client, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { startFakeLlm, type FakeLlm, type FakeLlmRequest } from '../helpers/fake-llm.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { LOCAL_TEST_EGRESS } from '../helpers/local-egress.js';

const OPENAI_KEY = 'sk-test-openai-4f9a1c2b7d';
const ANTHROPIC_KEY = 'sk-ant-test-8e3b5d6a0c';
const REPLY_SCHEMA = { type: 'object', properties: { reply: { type: 'string' } }, required: ['reply'], additionalProperties: false };

let t: TestDb;
let app: FastifyInstance;
let api: ApiClient;
let orgId: string;
let worker: Worker;
let openai: FakeLlm;
let anthropic: FakeLlm;
const ring = parseKeyRing(generateKeyEntry());

beforeAll(async () => {
  t = await createTestDb();
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test', keyRing: ring, egressPolicy: new EgressPolicy(LOCAL_TEST_EGRESS) });
  const seeded = await seedOrg(t.db, 'LLM Co');
  orgId = seeded.organizationId;
  api = client(app, seeded.key);
  openai = await startFakeLlm('openai');
  anthropic = await startFakeLlm('anthropic');
  await credential(api, 'openai', 'oai', { apiKey: OPENAI_KEY, baseUrl: openai.url });
  await credential(api, 'anthropic', 'claude', { apiKey: ANTHROPIC_KEY, baseUrl: anthropic.url });
  worker = new Worker(t.db, workerConfig(), silentLogger, 'llm-worker', { credentials: credentialResolver(t.db, ring) });
  void worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await openai?.close();
  await anthropic?.close();
  await app?.close();
  await t?.close();
});

beforeEach(() => {
  openai.requests.length = 0;
  anthropic.requests.length = 0;
  openai.reply(() => ({ content: '{}' }));
  anthropic.reply(() => ({ content: '{}' }));
});

async function credential(c: ApiClient, provider: string, name: string, secret: Json): Promise<void> {
  const res = await c.post('/v1/credentials', { provider, name, secret });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

async function start(c: ApiClient, steps: Json[], input: Json = {}): Promise<string> {
  const wf = await c.post('/v1/workflows', { name: `llm ${Math.random()}`, definition: { steps } });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const run = await c.post(`/v1/workflows/${wf.body.id}/runs`, { input });
  expect(run.status).toBe(202);
  return run.body.jobId;
}

async function stream(c: ApiClient, jobId: string): Promise<Json[]> {
  return (await c.get(`/v1/jobs/${jobId}/stream`)).body.items;
}

/** The job's result: the output of its last step (the llm step in these workflows). */
async function outputOf(c: ApiClient, jobId: string): Promise<Json> {
  const job = await c.get(`/v1/jobs/${jobId}`);
  return job.body.result;
}

const draft = (over: Json = {}): Json => ({
  id: 'draft',
  type: 'llm',
  credential: 'oai',
  model: 'gpt-4o-mini',
  system: 'You answer for {{ input.company }}.',
  prompt: 'Draft a reply to: {{ input.email.body }}',
  output: { schema: REPLY_SCHEMA },
  maxTokens: 800,
  temperature: 0.2,
  ...over,
});

const input = { company: 'Bakery Ltd', email: { body: 'Where is my order?' } };

describe('llm step: providers', () => {
  it('OpenAI: sends model, messages, max tokens, JSON mode and the Bearer key; parses and validates the reply', async () => {
    openai.reply(() => ({ content: '{"reply":"It ships today."}', inputTokens: 1000, outputTokens: 500 }));
    const jobId = await start(api, [draft()], input);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    expect(openai.requests).toHaveLength(1);
    const req = openai.requests[0]!;
    expect(req.path).toBe('/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(req.body).toMatchObject({ model: 'gpt-4o-mini', max_tokens: 800, temperature: 0.2, response_format: { type: 'json_object' } });
    expect(req.body.messages).toHaveLength(2);
    expect(req.body.messages[0].role).toBe('system');
    expect(req.body.messages[0].content).toContain('You answer for Bakery Ltd.');
    // The schema travels in the system prompt (its keys in the stored definition's order).
    const sent = JSON.parse((req.body.messages[0].content as string).split('JSON Schema:\n')[1]!);
    expect(sent).toEqual(REPLY_SCHEMA);
    expect(req.body.messages[1]).toEqual({ role: 'user', content: 'Draft a reply to: Where is my order?' });

    // gpt-4o-mini: 1000 × 0.15 + 500 × 0.60 = 450 micro-USD.
    expect(await outputOf(api, jobId)).toEqual({
      text: '{"reply":"It ships today."}',
      data: { reply: 'It ships today.' },
      model: 'gpt-4o-mini',
      provider: 'openai',
      finishReason: 'stop',
      usage: { inputTokens: 1000, outputTokens: 500, costUsd: 0.00045 },
    });
    const usage = (await api.get('/v1/usage')).body;
    expect(usage.current).toMatchObject({ aiInputTokens: 1000, aiOutputTokens: 500, aiCostUsd: 0.00045 });
    expect(usage.limits.aiTokensPerMonth).toBeNull();
  });

  it('Azure OpenAI (apiVersion in the secret): api-key header and ?api-version=', async () => {
    await credential(api, 'openai', 'azure', { apiKey: 'azure-key-123456', baseUrl: `${openai.url}/openai/deployments/mini`, apiVersion: '2024-10-21' });
    openai.reply(() => ({ content: 'plain text answer' }));
    const jobId = await start(api, [{ id: 'a', type: 'llm', credential: 'azure', model: 'gpt-4o-mini', prompt: 'hi' }]);
    expect((await waitForJob(t.db, orgId, jobId)).status).toBe('COMPLETED');
    const req = openai.requests[0]!;
    expect(req.path).toBe('/openai/deployments/mini/chat/completions?api-version=2024-10-21');
    expect(req.headers['api-key']).toBe('azure-key-123456');
    expect(req.headers.authorization).toBeUndefined();
    expect(req.body.response_format).toBeUndefined();
    expect((await outputOf(api, jobId)).data).toBeNull();
  });

  it('Anthropic: x-api-key, anthropic-version, max_tokens and the system prompt; a fenced JSON reply is read', async () => {
    anthropic.reply(() => ({ content: '```json\n{"reply":"Tomorrow."}\n```', inputTokens: 20, outputTokens: 7 }));
    const jobId = await start(api, [draft({ credential: 'claude', model: 'claude-3-5-haiku-20241022', temperature: undefined })], input);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    const req = anthropic.requests[0]!;
    expect(req.path).toBe('/v1/messages');
    expect(req.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    expect(req.headers['anthropic-version']).toBe('2023-06-01');
    expect(req.body).toMatchObject({ model: 'claude-3-5-haiku-20241022', max_tokens: 800, messages: [{ role: 'user', content: 'Draft a reply to: Where is my order?' }] });
    expect(req.body.system).toContain('You answer for Bakery Ltd.');
    expect(req.body.system).toContain('JSON');
    expect(req.body.temperature).toBeUndefined();
    // claude-3-5-haiku (dated snapshot priced as its family): 20 × 0.8 + 7 × 4 = 44 micro-USD.
    expect(await outputOf(api, jobId)).toMatchObject({
      data: { reply: 'Tomorrow.' },
      provider: 'anthropic',
      finishReason: 'stop',
      usage: { inputTokens: 20, outputTokens: 7, costUsd: 0.000044 },
    });
  });

  it('an unknown model costs 0 and reports costUsd null', async () => {
    openai.reply(() => ({ content: 'ok', inputTokens: 3, outputTokens: 4 }));
    const jobId = await start(api, [{ id: 'a', type: 'llm', credential: 'oai', model: 'my-local-llama', prompt: 'hi' }]);
    expect((await waitForJob(t.db, orgId, jobId)).status).toBe('COMPLETED');
    expect((await outputOf(api, jobId)).usage).toEqual({ inputTokens: 3, outputTokens: 4, costUsd: null });
  });
});

describe('llm step: output schema', () => {
  it('asks once more with the invalid reply and the errors, then succeeds; both calls’ tokens count', async () => {
    let n = 0;
    openai.reply(() => (++n === 1 ? { content: '{"answer": 1}', inputTokens: 100, outputTokens: 10 } : { content: '{"reply":"fixed"}', inputTokens: 150, outputTokens: 12 }));
    const jobId = await start(api, [draft({ model: 'unpriced-model' })], input);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    expect(openai.requests).toHaveLength(2);
    const second = openai.requests[1]!.body.messages as Json[];
    expect(second.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(second[2].content).toBe('{"answer": 1}');
    expect(second[3].content).toContain('/reply: is required');
    expect(second[3].content).toContain('/answer: is not allowed');
    expect(await outputOf(api, jobId)).toMatchObject({ data: { reply: 'fixed' }, usage: { inputTokens: 250, outputTokens: 22, costUsd: null } });
    const warn = (await stream(api, jobId)).find((r) => r.kind === 'LOG' && r.level === 'WARN');
    expect(warn.message).toContain('asking once more');
  });

  it('fails LLM_OUTPUT_INVALID with the errors after the second invalid reply', async () => {
    openai.reply(() => ({ content: 'Sure! Here is your reply.' }));
    const jobId = await start(api, [draft()], input);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('LLM_OUTPUT_INVALID');
    expect(openai.requests).toHaveLength(2);
    const failed = (await stream(api, jobId)).find((r) => r.kind === 'STEP_FAILED');
    expect(failed.data.errors[0]).toMatchObject({ path: '' });
    expect(failed.data.errors[0].message).toContain('not JSON');
  });
});

describe('llm step: provider limits and failures', () => {
  it('a 429 with a short Retry-After is retried inside the attempt', async () => {
    let n = 0;
    openai.reply(() => (++n === 1 ? { status: 429, retryAfter: '1' } : { content: 'after the wait' }));
    const jobId = await start(api, [{ id: 'a', type: 'llm', credential: 'oai', model: 'gpt-4o-mini', prompt: 'hi' }]);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    expect(openai.requests).toHaveLength(2);
    const rows = await stream(api, jobId);
    expect(rows.filter((r) => r.kind === 'STEP_STARTED')).toHaveLength(1);
    expect(rows.find((r) => r.kind === 'LOG' && r.level === 'WARN').data).toMatchObject({ status: 429, retry: 1, delayMs: 1000 });
  });

  it('a 429 with a long Retry-After suspends the job and holds the credential’s bucket: another job waits without calling', async () => {
    await credential(api, 'openai', 'held', { apiKey: 'sk-held-key-000111', baseUrl: openai.url });
    let n = 0;
    openai.reply(() => (++n === 1 ? { status: 429, retryAfter: '120' } : { content: 'resumed' }));
    const step = { id: 'a', type: 'llm', credential: 'held', model: 'gpt-4o-mini', prompt: 'hi' };
    const first = await start(api, [step]);
    await waitForStatus(t.db, orgId, first, 'WAITING');
    expect(openai.requests).toHaveLength(1);
    // The bucket gives nothing for about two minutes.
    const waitMs = await rateLimitService(t.db).take(orgId, [providerBucket('held')]);
    expect(waitMs).toBeGreaterThan(100_000);
    expect(waitMs).toBeLessThanOrEqual(120_000);

    const second = await start(api, [step]);
    await waitForStatus(t.db, orgId, second, 'WAITING');
    expect(openai.requests).toHaveLength(1);
    const waiting = (await stream(api, second)).find((r) => r.kind === 'WAITING');
    expect(waiting.data.reason).toBe('llm:held is held');

    // Release the bucket and wake both: each resumes its attempt and calls.
    await t.db.query(`UPDATE stepwise.rate_limit_buckets SET tokens = 50 WHERE organization_id = $1 AND bucket = 'llm:held'`, [orgId]);
    await t.db.query(`UPDATE stepwise.job_queue SET run_at = now() WHERE job_id = ANY($1::uuid[])`, [[first, second]]);
    expect((await waitForJob(t.db, orgId, first)).status).toBe('COMPLETED');
    expect((await waitForJob(t.db, orgId, second)).status).toBe('COMPLETED');
    expect(openai.requests).toHaveLength(3);
    expect((await stream(api, first)).filter((r) => r.kind === 'STEP_STARTED')).toHaveLength(1);
  });

  it('5xx is retried (Retry-After honoured), and after 4 retries fails LLM_PROVIDER_ERROR', async () => {
    let n = 0;
    openai.reply(() => (++n <= 2 ? { status: 503, retryAfter: '0' } : { content: 'third time' }));
    const ok = await start(api, [{ id: 'a', type: 'llm', credential: 'oai', model: 'gpt-4o-mini', prompt: 'hi' }]);
    expect((await waitForJob(t.db, orgId, ok)).status).toBe('COMPLETED');
    expect(openai.requests).toHaveLength(3);

    openai.requests.length = 0;
    openai.reply(() => ({ status: 500, retryAfter: '0' }));
    const bad = await start(api, [{ id: 'a', type: 'llm', credential: 'oai', model: 'gpt-4o-mini', prompt: 'hi' }]);
    const job = await waitForJob(t.db, orgId, bad);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('LLM_PROVIDER_ERROR');
    expect(job.errorMessage).toContain('fake error 500');
    expect(openai.requests).toHaveLength(5);
  });

  it('a 400 fails LLM_REQUEST_REJECTED at once', async () => {
    openai.reply(() => ({ status: 400, body: { error: { message: 'model not found' } } }));
    const jobId = await start(api, [{ id: 'a', type: 'llm', credential: 'oai', model: 'gpt-4o-mini', prompt: 'hi' }]);
    const job = await waitForJob(t.db, orgId, jobId);
    expect([job.errorCode, job.errorMessage]).toEqual(['LLM_REQUEST_REJECTED', 'openai answered 400: model not found']);
    expect(openai.requests).toHaveLength(1);
  });

  it('a provider that never answers ends in STEP_TIMEOUT', async () => {
    openai.reply(() => ({ hang: true }));
    const jobId = await start(api, [{ id: 'a', type: 'llm', credential: 'oai', model: 'gpt-4o-mini', prompt: 'hi', timeoutMs: 300 }]);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('STEP_TIMEOUT');
  });

  it('refuses PLAN_LIMIT_EXCEEDED before calling once the month’s AI tokens are spent, and does not retry it', async () => {
    const starter = await seedOrg(t.db, 'Starter LLM', 'STARTER');
    const sapi = client(app, starter.key);
    await credential(sapi, 'openai', 'oai', { apiKey: 'sk-starter-key-9999', baseUrl: openai.url });
    await t.db.query(
      `INSERT INTO stepwise.usage_records (organization_id, period_start, ai_input_tokens, ai_output_tokens)
       VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 1500000, 500000)`,
      [starter.organizationId],
    );
    const jobId = await start(sapi, [{ id: 'a', type: 'llm', credential: 'oai', model: 'gpt-4o-mini', prompt: 'hi', retry: { maxAttempts: 3, initialMs: 10 } }]);
    const job = await waitForJob(t.db, starter.organizationId, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('PLAN_LIMIT_EXCEEDED');
    expect(openai.requests).toHaveLength(0);
    const rows = await stream(sapi, jobId);
    expect(rows.filter((r) => r.kind === 'STEP_FAILED')).toHaveLength(1);
    expect(rows.find((r) => r.kind === 'STEP_FAILED').data).toMatchObject({ resource: 'aiTokens', limit: 2_000_000, current: 2_000_000 });
    const usage = (await sapi.get('/v1/usage')).body;
    expect(usage.limits.aiTokensPerMonth).toBe(2_000_000);
    expect(usage.current).toMatchObject({ aiInputTokens: 1_500_000, aiOutputTokens: 500_000 });
  });
});

describe('llm step: secrets and definitions', () => {
  it('redacts an API key the model echoes from the output, the result and the stream', async () => {
    openai.reply((req: FakeLlmRequest) => ({ content: `your key is ${req.headers.authorization}` }));
    const jobId = await start(api, [{ id: 'a', type: 'llm', credential: 'oai', model: 'gpt-4o-mini', prompt: 'echo' }]);
    expect((await waitForJob(t.db, orgId, jobId)).status).toBe('COMPLETED');
    const out = await outputOf(api, jobId);
    expect(out.text).toBe('your key is Bearer [REDACTED]');
    expect(JSON.stringify(await stream(api, jobId))).not.toContain(OPENAI_KEY);
    const raw = await t.db.query(`SELECT data::text AS data, message FROM stepwise.execution_log WHERE job_id = $1`, [jobId]);
    expect(JSON.stringify(raw.rows)).not.toContain(OPENAI_KEY);
  });

  it('refuses a definition without a credential, or with a bad output schema, naming the field', async () => {
    const save = (step: Json) => api.post('/v1/workflows', { name: 'bad llm', definition: { steps: [step] } });
    const { credential: _c, ...noCredential } = draft();
    expect(expectError(await save(noCredential), 400, 'VALIDATION').details.path).toBe('/definition/steps/0/credential');
    expect(expectError(await save(draft({ output: { schema: { type: 'object', properties: { reply: { type: 'strin' } } } } })), 400, 'VALIDATION').details.path).toBe(
      '/definition/steps/0/output/schema',
    );
    expect(expectError(await save(draft({ output: { schema: { type: 'array' } } })), 400, 'VALIDATION').details.path).toBe('/definition/steps/0/output/schema/type');
    expect(expectError(await save(draft({ temperature: 3 })), 400, 'VALIDATION').details.path).toBe('/definition/steps/0/temperature');
  });

  it('fails LLM_CREDENTIAL_INVALID for a credential of another provider', async () => {
    await credential(api, 'smtp', 'mail', { host: 'smtp.example.com', port: 25, from: 'a@b.c' });
    const jobId = await start(api, [{ id: 'a', type: 'llm', credential: 'mail', model: 'gpt-4o-mini', prompt: 'hi' }]);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.errorCode).toBe('LLM_CREDENTIAL_INVALID');
  });
});
