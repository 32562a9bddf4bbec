import type { StepBase } from '../../model/definition.js';
import { noChildren, noDirectCredentials, noExtraChecks, stepTimeout, type StepType } from './types.js';

/** Does nothing; useful as a placeholder and for measuring engine overhead. */
export interface NoopStep extends StepBase {
  type: 'noop';
}

export const noopStep: StepType<NoopStep> = {
  type: 'noop',
  properties: {},
  required: [],
  sources: () => ({}),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: true,
  run: async () => null,
};
