export { Worker } from './worker.js';
export { Recorder } from './recorder.js';
export { executeJob, LIMITS } from './executor.js';
export { defineWorkflow, reviseWorkflow, retireWorkflow, startRuns, MAX_INPUT_BYTES, type RunRequest } from './service.js';
export * from './definition/index.js';
