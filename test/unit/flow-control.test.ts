import { describe, expect, it } from 'vitest';
import { validateDefinition } from '../../src/engine/definition/index.js';
import { runFlowOf } from '../../src/engine/flow-keys.js';
import { ValidationError } from '../../src/errors/index.js';
import { nextClaimCursor } from '../../src/store/index.js';

function pathOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return String(err.details.path);
    throw err;
  }
  return undefined;
}

const call = { id: 'call', type: 'http', method: 'GET', url: 'https://payer.test/x' };

const full = {
  concurrency: [{ key: 'input.customerId', limit: 1 }],
  rateLimits: [{ bucket: 'payer-portal', key: 'input.payerId', limit: 25, perMs: 1000 }],
  debounce: { key: 'input.accountId', delayMs: 30_000, maxDelayMs: 300_000 },
  dedupe: { key: 'input.eventId', ttlMs: 86_400_000 },
  priority: "input.tier = 'enterprise' ? 1 : 3",
  steps: [{ ...call, rateLimit: 'payer-portal' }],
};

describe('flow control in definitions', () => {
  it('accepts the documented top-level fields and a step naming a bucket', () => {
    expect(validateDefinition(full)).toBe(full);
  });

  it.each([
    ['too many concurrency rules', { concurrency: Array.from({ length: 4 }, () => ({ key: 'input.a', limit: 1 })) }, '/definition/concurrency'],
    ['concurrency limit 0', { concurrency: [{ key: 'input.a', limit: 0 }] }, '/definition/concurrency/0/limit'],
    ['concurrency limit over 10,000', { concurrency: [{ key: 'input.a', limit: 10_001 }] }, '/definition/concurrency/0/limit'],
    ['concurrency key that does not compile', { concurrency: [{ key: 'input.(', limit: 1 }] }, '/definition/concurrency/0/key'],
    ['bucket name with a space', { rateLimits: [{ bucket: 'a b', limit: 1, perMs: 1 }] }, '/definition/rateLimits/0/bucket'],
    ['perMs over a day', { rateLimits: [{ bucket: 'a', limit: 1, perMs: 86_400_001 }] }, '/definition/rateLimits/0/perMs'],
    ['six buckets', { rateLimits: Array.from({ length: 6 }, (_, i) => ({ bucket: `b${i}`, limit: 1, perMs: 1 })) }, '/definition/rateLimits'],
    ['a bucket declared twice', { rateLimits: [{ bucket: 'a', limit: 1, perMs: 1 }, { bucket: 'a', limit: 2, perMs: 1 }] }, '/definition/rateLimits/1/bucket'],
    ['a bucket key that does not compile', { rateLimits: [{ bucket: 'a', key: '$$(', limit: 1, perMs: 1 }] }, '/definition/rateLimits/0/key'],
    ['debounce delay above its maximum', { debounce: { key: 'input.a', delayMs: 2_000, maxDelayMs: 1_000 } }, '/definition/debounce/delayMs'],
    ['debounce over 30 days', { debounce: { key: 'input.a', delayMs: 1, maxDelayMs: 30 * 86_400_000 + 1 } }, '/definition/debounce/maxDelayMs'],
    ['dedupe without ttl', { dedupe: { key: 'input.a' } }, '/definition/dedupe/ttlMs'],
    ['a priority that does not compile', { priority: 'input.tier = ' }, '/definition/priority'],
    ['a priority that is not a string', { priority: 1 }, '/definition/priority'],
  ])('%s → error at %s', (_name, extra, path) => {
    expect(pathOf(() => validateDefinition({ steps: [call], ...extra }))).toBe(path);
  });

  it('refuses a step naming a bucket the workflow does not declare, also inside a block', () => {
    expect(pathOf(() => validateDefinition({ steps: [{ ...call, rateLimit: 'nope' }] }))).toBe('/definition/steps/0/rateLimit');
    const nested = {
      rateLimits: [{ bucket: 'known', limit: 1, perMs: 1000 }],
      steps: [
        { id: 'n', type: 'noop' },
        { id: 'maybe', type: 'if', condition: 'input.go', then: [{ ...call, rateLimit: 'known' }], else: [{ ...call, id: 'other', rateLimit: 'unknown' }] },
      ],
    };
    expect(pathOf(() => validateDefinition(nested))).toBe('/definition/steps/1/else/0/rateLimit');
  });
});

describe('run flow keys', () => {
  it('a definition without flow control costs nothing: no plan', () => {
    expect(runFlowOf('w', { steps: [{ id: 'n', type: 'noop' }] })).toBeUndefined();
  });

  it('maps the priority expression (lower first) onto the queue priority (higher first); an explicit priority wins', async () => {
    const plan = runFlowOf('w', full)!;
    const enterprise = await plan.keysOf({ input: { tier: 'enterprise' } }, 'input');
    const standard = await plan.keysOf({ input: { tier: 'standard' } }, 'input');
    expect(enterprise.priority).toBe(-1);
    expect(standard.priority).toBe(-3);
    expect(enterprise.priority!).toBeGreaterThan(standard.priority!);
    expect((await plan.keysOf({ input: { tier: 'enterprise' }, priority: 7 }, 'input')).priority).toBeUndefined();
  });

  it('keys are per workflow and value; a missing value applies no rule; retries and children neither dedupe nor debounce', async () => {
    const a = runFlowOf('wf-a', full)!;
    const b = runFlowOf('wf-b', full)!;
    const input = { customerId: 'c1', accountId: 'acc', eventId: 'e1' };
    const k1 = await a.keysOf({ input }, 'input');
    const k2 = await a.keysOf({ input: { ...input, customerId: 'c2' } }, 'input');
    const k3 = await b.keysOf({ input }, 'input');
    expect(k1.concurrency).toHaveLength(1);
    expect(k1.concurrency[0]!.limit).toBe(1);
    expect(k1.concurrency[0]!.key).not.toBe(k2.concurrency[0]!.key);
    expect(k1.concurrency[0]!.key).not.toBe(k3.concurrency[0]!.key);
    expect(k1.dedupeKey).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(k1.debounceKey).not.toBe(k1.dedupeKey);
    expect((await a.keysOf({ input: {} }, 'input')).concurrency).toEqual([]);
    const retry = await a.keysOf({ input, initiatorType: 'RETRY' }, 'input');
    expect(retry.dedupeKey).toBeUndefined();
    expect(retry.debounceKey).toBeUndefined();
    expect(retry.concurrency).toHaveLength(1);
  });

  it('a priority that is not a number, or a key that fails, refuses the run naming its input', async () => {
    const plan = runFlowOf('w', { steps: [call], priority: 'input.tier', concurrency: [{ key: '$number(input.n)', limit: 1 }] })!;
    await expect(plan.keysOf({ input: { tier: 'gold', n: '1' } }, 'runs/2/input')).rejects.toMatchObject({ details: { path: 'runs/2/input', expression: '/definition/priority' } });
    await expect(plan.keysOf({ input: { n: 'x' } }, 'input')).rejects.toMatchObject({ details: { path: 'input', expression: '/definition/concurrency/0/key' } });
  });
});

describe('claim rotation', () => {
  const o1 = '01900000-0000-7000-8000-000000000001';
  const o2 = '01900000-0000-7000-8000-000000000002';
  const o3 = '01900000-0000-7000-8000-000000000003';
  it('the next claim starts after the last organization served, wrapping around', () => {
    expect(nextClaimCursor([o2, o1], '00000000-0000-0000-0000-000000000000')).toBe(o2);
    expect(nextClaimCursor([o3, o1], o2)).toBe(o1); // o3, then wrapped to o1
    expect(nextClaimCursor([o3], o2)).toBe(o3);
    expect(nextClaimCursor([], o2)).toBe(o2);
  });
});
