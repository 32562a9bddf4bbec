import { CREDENTIAL_NAME, ORIGIN, SELECTOR } from '../types.js';

/**
 * What the payer-portal templates share: the settings that say where the
 * portal is and how its sign-in and member search look (defaults for the
 * common layout; every portal names its fields differently), the sign-in
 * step, and the search actions. Sign-in is a browser step of its own: a step
 * that types credentials is never traced, and the next step reuses its
 * session.
 */
export const PORTAL_SETTINGS = {
  portalOrigin: { ...ORIGIN, description: 'The portal, e.g. https://portal.payer.example' },
  portalCredential: { ...CREDENTIAL_NAME, default: 'payer_portal', description: 'A portal_login credential: {username, password}' },
  loginPath: { type: 'string', pattern: '^/', default: '/login' },
  searchPath: { type: 'string', pattern: '^/', default: '/search' },
  usernameField: { ...SELECTOR, default: '#user' },
  passwordField: { ...SELECTOR, default: '#password' },
  signInButton: { ...SELECTOR, default: '#sign-in' },
  memberField: { ...SELECTOR, default: '#member' },
  searchButton: { ...SELECTOR, default: 'button[type=submit]' },
} as const;

export const PORTAL_SIGN_IN = {
  id: 'sign_in',
  type: 'browser',
  session: 'portal',
  allowOrigins: [{ $config: 'portalOrigin' }],
  actions: [
    { type: 'navigate', url: '[[config.portalOrigin]][[config.loginPath]]' },
    { type: 'change', selectors: [['[[config.usernameField]]']], value: '{{ credentials.[[config.portalCredential]].username }}' },
    { type: 'change', selectors: [['[[config.passwordField]]']], value: '{{ credentials.[[config.portalCredential]].password }}' },
    { type: 'click', selectors: [['[[config.signInButton]]']], assertedEvents: [{ type: 'navigation' }] },
  ],
} as const;

/** A browser step in the signed-in session: search `input.memberId`, wait for the table setting `table`, extract it as `output`. */
export function portalMemberSearch(id: string, table: string, output: string) {
  return {
    id,
    type: 'browser',
    session: 'portal',
    allowOrigins: [{ $config: 'portalOrigin' }],
    screenshots: 'onFailure',
    actions: [
      { type: 'navigate', url: '[[config.portalOrigin]][[config.searchPath]]' },
      { type: 'change', selectors: [['[[config.memberField]]']], value: '{{ input.memberId }}' },
      { type: 'click', selectors: [['[[config.searchButton]]']], assertedEvents: [{ type: 'navigation' }] },
      { type: 'waitForElement', selectors: [[`[[config.${table}]]`]], timeout: 30_000 },
      { type: 'customStep', name: 'stepwise.extract', parameters: { output, selectors: [[`[[config.${table}]]`]], as: 'table' } },
    ],
  };
}
