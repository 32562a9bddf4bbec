/** The workflow definition format clients write (JSON). Validated by schema.ts + validate.ts. */
export const LOG_LEVEL_NAMES = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

interface StepBase {
  /** Unique within the workflow; later steps read this step's output as `steps.<id>`. */
  id: string;
  name?: string;
}

export interface TransformStep extends StepBase {
  type: 'transform';
  /** JSONata over `{ input, steps }`; the step's output is its value. */
  expression: string;
}

export interface HttpStep extends StepBase {
  type: 'http';
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Statuses that count as success; default any 2xx. */
  expectStatus?: number[];
}

export interface LogStep extends StepBase {
  type: 'log';
  level?: LogLevelName;
  message: string;
}

export interface NoopStep extends StepBase {
  type: 'noop';
}

export type StepDefinition = TransformStep | HttpStep | LogStep | NoopStep;
export type StepType = StepDefinition['type'];

export interface WorkflowDefinition {
  steps: StepDefinition[];
}
