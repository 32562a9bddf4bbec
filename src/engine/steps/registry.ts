import type { StepBase, WorkflowDefinition } from '../../model/definition.js';
import { approvalStep } from './approval.js';
import { browserStep } from './browser.js';
import { delayStep } from './delay.js';
import { emailStep } from './email.js';
import { httpStep } from './http.js';
import { llmStep } from './llm.js';
import { logStep } from './log.js';
import { markUsedStep } from './mark-used.js';
import { retrieveStep } from './retrieve.js';
import { sqlStep } from './sql.js';
import { noopStep } from './noop.js';
import { transformStep } from './transform.js';
import type { StepType } from './types.js';
import { waitStep } from './wait.js';
import { workflowStep } from './workflow.js';
import { ifStep } from '../blocks/if.js';
import { switchStep } from '../blocks/switch.js';
import { forEachStep } from '../blocks/for-each.js';
import { parallelStep } from '../blocks/parallel.js';

/**
 * Every step type, by its `type`. A new step type is one file in this
 * folder exporting its StepType, plus one line here: the definition schema,
 * validation, credential references, the executor and the attempt loop all
 * read this map.
 */
const ENTRIES = {
  transform: transformStep,
  http: httpStep,
  log: logStep,
  noop: noopStep,
  delay: delayStep,
  wait: waitStep,
  approval: approvalStep,
  workflow: workflowStep,
  browser: browserStep,
  retrieve: retrieveStep,
  markUsed: markUsedStep,
  llm: llmStep,
  email: emailStep,
  sql: sqlStep,
  if: ifStep,
  switch: switchStep,
  forEach: forEachStep,
  parallel: parallelStep,
};

/** Each key must be its entry's own `type` (a typo here does not compile). */
type KeyedByType<R> = { [K in keyof R]: R[K] extends StepType<infer S> ? (S['type'] extends K ? R[K] : never) : never };

export const STEP_TYPES: KeyedByType<typeof ENTRIES> = ENTRIES;

type StepOf<E> = E extends StepType<infer S> ? S : never;

/** A step of any registered type (the union follows the registry, so no type lacks an entry). */
export type StepDefinition = StepOf<(typeof ENTRIES)[keyof typeof ENTRIES]>;
export type StepTypeName = StepDefinition['type'];

/** A workflow definition whose steps the engine knows. */
export type Definition = WorkflowDefinition<StepDefinition>;

/** The registered type names, in registry order (error messages list them). */
export const STEP_TYPE_NAMES = Object.keys(ENTRIES) as readonly StepTypeName[];

/**
 * The registry entry of a step, or undefined for an unknown type. Typed on
 * StepBase: TypeScript cannot tie a union of steps to the union of their
 * entries, so the lookup is where the one widening happens; validation has
 * already checked the step against its entry's schema.
 */
export function stepTypeOf(step: StepBase): StepType<StepBase> | undefined {
  return Object.hasOwn(ENTRIES, step.type) ? (ENTRIES as unknown as Record<string, StepType<StepBase>>)[step.type] : undefined;
}

/** A step that holds steps (its type has child lists). */
export function isBlock(step: StepBase): boolean {
  return stepTypeOf(step)?.block === true;
}

/** True when every step, and every compensation, is of a registered type. */
export function isKnownDefinition(definition: WorkflowDefinition): definition is Definition {
  return definition.steps.every(
    (s) => stepTypeOf(s) !== undefined && (s.compensate === undefined || stepTypeOf(s.compensate.step)?.compensation === true),
  );
}
