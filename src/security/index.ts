export {
  createApiKey,
  createOrganizationWithOwner,
  authenticate,
  DEFAULT_OWNER_EMAIL,
  type NewKeyOptions,
  type Principal,
} from './api-keys.js';
export * from './permissions.js';
export * from './webhooks.js';
