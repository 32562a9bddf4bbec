/** The workflow definition format clients write (JSON): the shared shapes, and the union of the registry's step types. */
export type { RetryPolicy, StepBase, WorkflowDefinition } from '../../model/definition.js';
export type { StepDefinition, StepTypeName, Definition } from '../steps/registry.js';
