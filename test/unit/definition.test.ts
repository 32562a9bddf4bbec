import { describe, expect, it } from 'vitest';
import { MAX_DEFINITION_BYTES, renderTemplates, validateDefinition, parseTemplate } from '../../src/engine/definition/index.js';
import { PayloadTooLargeError, ValidationError } from '../../src/errors/index.js';

function pathOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError || err instanceof PayloadTooLargeError) return String(err.details.path);
    throw err;
  }
  return undefined;
}

describe('validateDefinition', () => {
  it('accepts every step type of the documented format', () => {
    const def = {
      steps: [
        { id: 'shape', type: 'transform', expression: '{ "id": input.id }' },
        { id: 'call', type: 'http', method: 'GET', url: 'https://example.test/{{ steps.shape.id }}', headers: { 'X-Trace': '{{ input.t }}' }, expectStatus: [200, 404] },
        { id: 'send', type: 'http', method: 'POST', url: 'https://example.test/', body: { a: '{{ input.a }}', list: [1, '{{ input.b }}'] } },
        { id: 'note', type: 'log', level: 'INFO', message: 'checked {{ input.id }}', name: 'Note it' },
        { id: 'n', type: 'noop' },
      ],
    };
    expect(validateDefinition(def)).toBe(def);
  });

  it.each([
    ['not an object', 'nope', '/definition'],
    ['no steps', {}, '/definition/steps'],
    ['empty steps', { steps: [] }, '/definition/steps'],
    ['unknown top-level property', { steps: [{ id: 'a', type: 'noop' }], extra: 1 }, '/definition/extra'],
    ['missing type', { steps: [{ id: 'a' }] }, '/definition/steps/0/type'],
    ['unknown type', { steps: [{ id: 'a', type: 'shell' }] }, '/definition/steps/0/type'],
    ['missing id', { steps: [{ type: 'noop' }] }, '/definition/steps/0/id'],
    ['id not a name', { steps: [{ id: 'has-dash', type: 'noop' }] }, '/definition/steps/0/id'],
    ['http without url', { steps: [{ id: 'a', type: 'http', method: 'GET' }] }, '/definition/steps/0/url'],
    ['http bad method', { steps: [{ id: 'a', type: 'http', method: 'FETCH', url: 'https://x.test' }] }, '/definition/steps/0/method'],
    ['http bad expectStatus', { steps: [{ id: 'a', type: 'http', method: 'GET', url: 'https://x.test', expectStatus: [700] }] }, '/definition/steps/0/expectStatus/0'],
    ['log bad level', { steps: [{ id: 'a', type: 'log', level: 'LOUD', message: 'x' }] }, '/definition/steps/0/level'],
    ['unknown step property', { steps: [{ id: 'a', type: 'noop', retries: 3 }] }, '/definition/steps/0/retries'],
    ['duplicate ids', { steps: [{ id: 'a', type: 'noop' }, { id: 'a', type: 'noop' }] }, '/definition/steps/1/id'],
    ['bad JSONata', { steps: [{ id: 'a', type: 'transform', expression: 'input.(' }] }, '/definition/steps/0/expression'],
    ['bad template in url', { steps: [{ id: 'a', type: 'http', method: 'GET', url: 'https://x.test/{{ ]] }}' }] }, '/definition/steps/0/url'],
    ['empty template', { steps: [{ id: 'a', type: 'log', message: 'x {{ }}' }] }, '/definition/steps/0/message'],
    ['bad template deep in body', { steps: [{ id: 'a', type: 'http', method: 'POST', url: 'https://x.test', body: { x: [{ y: '{{ ( }}' }] } }] }, '/definition/steps/0/body/x/0/y'],
  ])('%s → error at %s', (_name, def, path) => {
    expect(pathOf(() => validateDefinition(def))).toBe(path);
  });

  it('refuses a definition over 1 MB with PayloadTooLargeError', () => {
    const big = { steps: [{ id: 'a', type: 'log', message: 'x' }], pad: 'y'.repeat(MAX_DEFINITION_BYTES) };
    expect(() => validateDefinition(big)).toThrow(PayloadTooLargeError);
  });
});

describe('templates', () => {
  const scope = { input: { id: 'p-1', n: 3, obj: { a: 1 } }, steps: { s: { list: [1, 2] } } };

  it('splits literal text and expressions', () => {
    expect(parseTemplate('a {{ x }} b {{y}}')).toEqual([{ literal: 'a ' }, { expr: 'x' }, { literal: ' b ' }, { expr: 'y' }]);
    expect(parseTemplate('plain')).toEqual([{ literal: 'plain' }]);
  });

  it('keeps the type of a whole-string template and stringifies mixed text', async () => {
    expect(await renderTemplates('{{ input.n }}', scope)).toBe(3);
    expect(await renderTemplates('{{ input.obj }}', scope)).toEqual({ a: 1 });
    expect(await renderTemplates('n={{ input.n }} obj={{ input.obj }} none={{ input.missing }}', scope)).toBe('n=3 obj={"a":1} none=');
    expect(await renderTemplates({ deep: ['{{ $sum(steps.s.list) }}', 'x'] }, scope)).toEqual({ deep: [3, 'x'] });
  });
});

describe('template fast path', () => {
  it('resolves plain dotted paths exactly as JSONata does', async () => {
    const { compileExpression, evaluate } = await import('../../src/engine/definition/index.js');
    const scope = {
      input: { member: 'M-1', n: 0, nil: null, nested: { deep: { x: 'y' } }, list: [1, 2], objs: [{ a: 1 }, { a: 2 }], str: 'abc', f: false },
      steps: { s: { body: { ok: true } } },
    };
    const paths = ['input.member', 'input.n', 'input.nil', 'input.nested', 'input.nested.deep.x', 'input.missing', 'input.missing.more',
      'input.list', 'input.objs.a', 'input.str.length', 'input.f', 'steps.s.body.ok', 'steps.nope', 'input'];
    for (const p of paths) {
      const viaTemplate = await renderTemplates(`{{ ${p} }}`, scope);
      const viaJsonata = await evaluate(compileExpression(p, p), scope);
      expect(viaTemplate, p).toEqual(viaJsonata);
    }
  });
});
