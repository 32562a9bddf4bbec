import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/ai/retry-after.js';
import { DEFAULT_LLM_PRICES, costMicros, parsePriceTable, priceOf } from '../../src/ai/prices.js';
import { parseJsonReply } from '../../src/ai/json-reply.js';
import { openAiBody } from '../../src/ai/openai.js';
import { anthropicBody } from '../../src/ai/anthropic.js';
import { readSecret } from '../../src/ai/providers.js';
import { isRetryable } from '../../src/engine/backoff.js';
import { llmStep, type LlmStep } from '../../src/engine/steps/llm.js';
import type { StepContext } from '../../src/engine/steps/types.js';
import type { MarkUsedRequest } from '../../src/engine/services.js';
import { ValidationError } from '../../src/errors/index.js';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.js';
import { Outbound } from '../../src/net/outbound.js';
import { LOCAL_TEST_EGRESS } from '../helpers/local-egress.js';

describe('Retry-After', () => {
  const now = Date.parse('2025-03-01T12:00:00Z');
  it('reads delta-seconds and HTTP dates; a past date is 0; garbage is null', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('1.5', now)).toBe(1_500);
    expect(parseRetryAfter('Sat, 01 Mar 2025 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sat, 01 Mar 2025 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('-5', now)).toBeNull();
    expect(parseRetryAfter('', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});

describe('price table', () => {
  it('defaults, overrides and additions from STEPWISE_LLM_PRICES', () => {
    expect(parsePriceTable(undefined)).toBe(DEFAULT_LLM_PRICES);
    const table = parsePriceTable('{"gpt-4o-mini":{"input":1,"output":2},"local":{"input":0,"output":0}}');
    expect(table['gpt-4o-mini']).toEqual({ input: 1, output: 2 });
    expect(table.local).toEqual({ input: 0, output: 0 });
    expect(table['gpt-4o']).toEqual(DEFAULT_LLM_PRICES['gpt-4o']);
  });

  it('refuses a bad table naming the entry', () => {
    const path = (raw: string) => {
      try {
        parsePriceTable(raw);
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        return (err as ValidationError).details.path;
      }
      throw new Error('accepted');
    };
    expect(path('not json')).toBe('STEPWISE_LLM_PRICES');
    expect(path('[1]')).toBe('STEPWISE_LLM_PRICES');
    expect(path('{"m":{"input":-1,"output":1}}')).toBe('STEPWISE_LLM_PRICES.m.input');
    expect(path('{"m":{"input":1}}')).toBe('STEPWISE_LLM_PRICES.m.output');
    expect(path('{"m":{"input":1,"output":1,"cached":1}}')).toBe('STEPWISE_LLM_PRICES.m.cached');
    expect(path('{"m":3}')).toBe('STEPWISE_LLM_PRICES.m');
  });

  it('prices a dated snapshot as its longest family name; unknown is null', () => {
    expect(priceOf(DEFAULT_LLM_PRICES, 'gpt-4o-mini-2024-07-18')).toEqual(DEFAULT_LLM_PRICES['gpt-4o-mini']);
    expect(priceOf(DEFAULT_LLM_PRICES, 'gpt-4o-2024-08-06')).toEqual(DEFAULT_LLM_PRICES['gpt-4o']);
    expect(priceOf(DEFAULT_LLM_PRICES, 'gpt-4omni')).toBeNull();
    expect(priceOf(DEFAULT_LLM_PRICES, 'toString')).toBeNull();
    expect(costMicros({ input: 0.15, output: 0.6 }, 1000, 500)).toBe(450);
  });
});

describe('JSON replies', () => {
  it('reads plain and fenced JSON, and says what is wrong otherwise', () => {
    expect(parseJsonReply(' {"a":1} ')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseJsonReply('```json\n{"a":1}\n```')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseJsonReply('```\n{"a":2}\n```')).toEqual({ ok: true, value: { a: 2 } });
    expect(parseJsonReply('Here: {"a":1}').ok).toBe(false);
    expect(parseJsonReply('')).toEqual({ ok: false, error: 'the reply is empty' });
  });
});

describe('request shapes', () => {
  const request = { model: 'm', system: 's', messages: [{ role: 'user' as const, content: 'p' }], maxTokens: 99, temperature: 0, json: true };
  it('OpenAI itself gets max_completion_tokens; a baseUrl or Azure gets max_tokens', () => {
    expect(openAiBody(request, { apiKey: 'k', baseUrl: undefined, apiVersion: undefined })).toEqual({
      model: 'm',
      messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'p' }],
      max_completion_tokens: 99,
      temperature: 0,
      response_format: { type: 'json_object' },
    });
    expect(openAiBody(request, { apiKey: 'k', baseUrl: 'http://x', apiVersion: undefined }).max_tokens).toBe(99);
  });
  it('Anthropic always sends max_tokens (1024 by default) and the system prompt apart', () => {
    expect(anthropicBody({ ...request, maxTokens: undefined })).toEqual({ model: 'm', max_tokens: 1024, system: 's', temperature: 0, messages: [{ role: 'user', content: 'p' }] });
  });
  it('checks a secret without naming its values', () => {
    expect(readSecret('openai', {})).toBe('its secret has no apiKey');
    expect(readSecret('openai', { apiKey: 'k', baseUrl: 'ftp://x' })).toBe('its baseUrl is not an http or https URL');
    expect(readSecret('anthropic', { apiKey: 'k', apiVersion: '2024-10-21' })).toBe('apiVersion is for Azure OpenAI (provider openai) only');
    expect(readSecret('openai', { apiKey: 'k', apiVersion: '2024-10-21' })).toEqual({ apiKey: 'k', baseUrl: undefined, apiVersion: '2024-10-21' });
  });
});

describe('retry policy', () => {
  it('never retries PLAN_LIMIT_EXCEEDED, even when the policy names it', () => {
    expect(isRetryable({ maxAttempts: 3 }, 'PLAN_LIMIT_EXCEEDED', 1)).toBe(false);
    expect(isRetryable({ maxAttempts: 3, on: ['PLAN_LIMIT_EXCEEDED'] }, 'PLAN_LIMIT_EXCEEDED', 1)).toBe(false);
    expect(isRetryable({ maxAttempts: 3 }, 'LLM_RATE_LIMITED', 1)).toBe(true);
  });
});

describe('usedDocuments', () => {
  let fake: FakeLlm;
  beforeAll(async () => {
    fake = await startFakeLlm('openai');
  });
  afterAll(async () => {
    await fake.close();
  });

  function context(marks: MarkUsedRequest[] | null): StepContext {
    const ctx = {
      scope: { input: {}, steps: {} },
      signal: new AbortController().signal,
      credential: () => ({ provider: 'openai', secret: { apiKey: 'sk-unit-key-123', baseUrl: fake.url } }),
      log: () => undefined,
      // The fake provider listens on 127.0.0.1, which the egress policy refuses unless named.
      net: new Outbound(LOCAL_TEST_EGRESS),
      resumed: undefined,
      job: { id: 'job-1', organizationId: 'org-1', workflowId: 'wf', runNumber: 1, depth: 0, initiatedBy: null },
      path: 'triage[2].answer',
      services: marks ? { knowledge: { retrieve: () => Promise.reject(new Error('unused')), markUsed: async (r: MarkUsedRequest) => (marks.push(r), { marked: 2, unknown: [] }) } } : {},
    };
    return ctx as unknown as StepContext;
  }

  const step: LlmStep = {
    id: 'answer',
    type: 'llm',
    credential: 'oai',
    model: 'gpt-4o-mini',
    prompt: 'which rules?',
    output: { schema: { type: 'object', properties: { usedDocuments: { type: 'array', items: { type: 'string' } } } } },
  };

  it('marks the external ids the reply names, once each, as used by this step path', async () => {
    fake.reply(() => ({ content: '{"usedDocuments":["rule-7","rule-9","rule-7"]}' }));
    const marks: MarkUsedRequest[] = [];
    const out = (await llmStep.run(step, context(marks))) as { data: unknown };
    expect(out.data).toEqual({ usedDocuments: ['rule-7', 'rule-9', 'rule-7'] });
    expect(marks).toEqual([
      { organizationId: 'org-1', jobId: 'job-1', usedByPath: 'triage[2].answer', retrievalPath: null, documents: ['rule-7', 'rule-9'], reason: 'llm' },
    ]);
  });

  it('skips marking without the knowledge service, or without usedDocuments', async () => {
    fake.reply(() => ({ content: '{"usedDocuments":["rule-7"]}' }));
    await expect(llmStep.run(step, context(null))).resolves.toMatchObject({ data: { usedDocuments: ['rule-7'] } });
    fake.reply(() => ({ content: '{}' }));
    const marks: MarkUsedRequest[] = [];
    await llmStep.run(step, context(marks));
    expect(marks).toEqual([]);
  });
});
