import { describe, expect, it } from 'vitest';
import { stepTypeIndex } from '../../src/engine/step-type-index.js';
import type { WorkflowDefinition } from '../../src/model/definition.js';

describe('step types of step result rows (the step duration metric’s type label)', () => {
  const definition = {
    steps: [
      { id: 'fetch', type: 'http', method: 'GET', url: 'https://example.org' },
      {
        id: 'each',
        type: 'forEach',
        items: '{{ input.items }}',
        steps: [
          { id: 'call', type: 'http', method: 'GET', url: 'https://example.org' },
          { id: 'pick', type: 'if', condition: 'item.ok', then: [{ id: 'note', type: 'log', message: 'ok' }], else: [{ id: 'note', type: 'noop' }] },
        ],
      },
      {
        id: 'fan',
        type: 'parallel',
        branches: { crm: [{ id: 'call', type: 'transform', expression: '1' }], erp: [{ id: 'call', type: 'noop' }] },
      },
      { id: 'route', type: 'switch', cases: [{ when: 'true', steps: [{ id: 'x', type: 'delay', ms: 1 }] }], default: [{ id: 'x', type: 'noop' }] },
    ],
  } as unknown as WorkflowDefinition;
  const typeOf = stepTypeIndex(definition);

  it('names top-level steps and blocks by their index', () => {
    expect(typeOf({ stepIndex: 0, path: null })).toBe('http');
    expect(typeOf({ stepIndex: 1 })).toBe('forEach');
    expect(typeOf({ stepIndex: 2, path: null })).toBe('parallel');
    expect(typeOf({ stepIndex: 3, path: null })).toBe('switch');
    expect(typeOf({ stepIndex: 9, path: null })).toBeUndefined();
    expect(typeOf({ stepIndex: null, path: null })).toBeUndefined();
  });

  it('names steps inside blocks by their path, in every loop iteration and branch', () => {
    expect(typeOf({ stepIndex: 1, path: 'each[0].call' })).toBe('http');
    expect(typeOf({ stepIndex: 1, path: 'each[417].call' })).toBe('http');
    expect(typeOf({ stepIndex: 1, path: 'each[3].pick' })).toBe('if');
    expect(typeOf({ stepIndex: 1, path: 'each[3].pick.then.note' })).toBe('log');
    expect(typeOf({ stepIndex: 1, path: 'each[3].pick.else.note' })).toBe('noop');
    expect(typeOf({ stepIndex: 2, path: 'fan.crm.call' })).toBe('transform');
    expect(typeOf({ stepIndex: 2, path: 'fan.erp.call' })).toBe('noop');
    expect(typeOf({ stepIndex: 3, path: 'route.0.x' })).toBe('delay');
    expect(typeOf({ stepIndex: 3, path: 'route.default.x' })).toBe('noop');
    expect(typeOf({ stepIndex: 1, path: 'each[0].missing' })).toBeUndefined();
  });
});
