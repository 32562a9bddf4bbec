export * from './organizations.js';
export * from './api-keys.js';
export * from './clients.js';
export * from './workflows.js';
export * from './jobs.js';
export * from './queue.js';
export * from './stream.js';
export * from './stream-codes.js';
