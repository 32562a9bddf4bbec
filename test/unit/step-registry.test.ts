import { describe, expect, it } from 'vitest';
import { definitionSchema, validateDefinition } from '../../src/engine/definition/index.js';
import { credentialRefs } from '../../src/engine/credentials.js';
import { STEP_TYPES, STEP_TYPE_NAMES, stepTypeOf, type StepDefinition } from '../../src/engine/steps/registry.js';
import { noDirectCredentials, noExtraChecks, type StepType } from '../../src/engine/steps/types.js';
import type { StepBase } from '../../src/model/definition.js';

interface FakeStep extends StepBase {
  type: 'fake';
}

// Compile-time checks (npm run typecheck fails when one stops being an error):
// an entry that leaves out a field does not compile; above all sideEffects,
// which exactly-once depends on.
// @ts-expect-error sideEffects is required
export const missingSideEffects: StepType<FakeStep> = {
  type: 'fake',
  properties: {},
  required: [],
  sources: () => ({}),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  abortable: false,
  compensation: true,
  run: async () => null,
};

// A step of a type the registry does not list is not a StepDefinition.
// @ts-expect-error 'fake' has no registry entry
export const unregistered: StepDefinition = { id: 'x', type: 'fake' };

describe('the step-type registry', () => {
  it('lists each type under its own name', () => {
    for (const [key, entry] of Object.entries(STEP_TYPES)) expect(entry.type).toBe(key);
    expect(STEP_TYPE_NAMES).toEqual(Object.keys(STEP_TYPES));
    expect(stepTypeOf({ id: 'x', type: 'toString' })).toBeUndefined();
  });

  it('the definition schema has one variant per registered type, compensations only for types that run to an end', () => {
    const variants = definitionSchema.$defs.step.oneOf.map((v: { properties?: unknown }) => (v.properties as { type: { const: string } }).type.const);
    expect(variants).toEqual(STEP_TYPE_NAMES);
    const compensations = STEP_TYPE_NAMES.filter((t) => stepTypeOf({ id: 'x', type: t })!.compensation);
    expect(compensations).toEqual(['transform', 'http', 'log', 'noop', 'email']);
  });

  it('refuses an unknown type naming every registered one, and a suspending compensation', () => {
    expect(() => validateDefinition({ steps: [{ id: 'a', type: 'teleport' }] })).toThrow(
      `/definition/steps/0/type must be one of ${STEP_TYPE_NAMES.join(', ')}`,
    );
    expect(() =>
      validateDefinition({ steps: [{ id: 'a', type: 'noop', compensate: { step: { id: 'b', type: 'delay', durationMs: 5 } } }] }),
    ).toThrow('/definition/steps/0/compensate/step/type must be one of transform, http, log, noop');
  });

  it('validation compiles what each type says it evaluates, at the path it names', () => {
    expect(() => validateDefinition({ steps: [{ id: 'a', type: 'http', method: 'GET', url: 'https://x/{{ ( }}' }] })).toThrow(/\/definition\/steps\/0\/url/);
    expect(() => validateDefinition({ steps: [{ id: 'a', type: 'log', message: 'x {{ }}' }] })).toThrow(/\/definition\/steps\/0\/message: empty/);
    expect(() => validateDefinition({ steps: [{ id: 'a', type: 'transform', expression: '$$$(' }] })).toThrow(/\/definition\/steps\/0\/expression/);
    expect(() => validateDefinition({ steps: [{ id: 'a', type: 'delay' }] })).toThrow('/definition/steps/0 needs exactly one of durationMs and until');
  });

  it('credential references come from what a type evaluates, not from every string', () => {
    expect(credentialRefs({ id: 'w', type: 'wait', signal: 'credentials.x' } as StepDefinition)).toEqual([]);
  });
});
