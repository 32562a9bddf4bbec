export { createApiKey, authenticate, type Principal } from './api-keys.js';
