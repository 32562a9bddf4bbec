export * from './histogram.js';
export * from './periods.js';
export * from './analytics.js';
export * from './steps.js';
export * from './job-state.js';
export * from './timeline-page.js';
export { parseStepPath, type ParsedStepPath, type PathList, type PathStep } from './step-path.js';
export * from './dashboard.js';
export * from './views.js';
