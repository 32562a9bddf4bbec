export { createApiKey, authenticate, type Principal } from './api-keys.js';
export * from './webhooks.js';
