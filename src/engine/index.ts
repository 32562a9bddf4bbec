export { Worker } from './worker.js';
export { Recorder } from './recorder.js';
export { executeJob } from './executor.js';
export { JobAbort } from './aborts.js';
export { LIMITS } from './limits.js';
export { defineWorkflow, reviseWorkflow, retireWorkflow, startRuns, MAX_INPUT_BYTES, type RunRequest } from './service.js';
export * from './definition/index.js';
