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
export {
  acceptInvitation,
  checkApiKey,
  checkPassword,
  endSession,
  idleExpiresAt,
  INVITATION_LIFETIME_MS,
  inviteUser,
  openSession,
  resolveSession,
  SESSION_ABSOLUTE_MS,
  SESSION_IDLE_MS,
  SESSION_TOUCH_MS,
  DEFAULT_SESSION_LIMITS,
  setUserPassword,
  type OpenedSession,
  type SessionLimits,
  type SignInVia,
} from './sessions.js';
export { checkPasswordRules, hashPassword, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, primeDummyHash, verifyPassword } from './passwords.js';
