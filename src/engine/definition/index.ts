export * from './types.js';
export { definitionSchema, STEP_ID_PATTERN, MAX_STEPS } from './schema.js';
export { validateDefinition, MAX_DEFINITION_BYTES } from './validate.js';
export {
  compileExpression,
  evaluate,
  renderTemplates,
  renderString,
  parseTemplate,
  checkTemplates,
  ExpressionError,
  type Expression,
} from './expressions.js';
