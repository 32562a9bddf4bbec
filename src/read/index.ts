export * from './histogram.js';
export * from './periods.js';
export * from './analytics.js';
export * from './steps.js';
export * from './job-state.js';
export * from './dashboard.js';
export * from './views.js';
