import { SELECTOR, type OfficialTemplate } from '../types.js';
import { PORTAL_SETTINGS, PORTAL_SIGN_IN, portalMemberSearch } from './portal.js';

/**
 * Signs in to a payer portal, lists a member's claims and picks out one
 * claim's status. Which columns hold the claim number and its status are
 * settings: portals label them differently (a column without a header is
 * `column_<n>`, as stepwise.extract names it).
 */
export const claimStatusCheck: OfficialTemplate = {
  slug: 'claim-status-check',
  name: 'Claim status check',
  description:
    'Signs in to a payer portal, searches the member\'s claims and returns the status of one claim (paid, open, denied…). ' +
    'Run it with {"memberId": "...", "claimId": "..."}; found is false when the portal does not list the claim.',
  category: 'OPERATIONS',
  tags: ['healthcare', 'claims', 'payer', 'portal', 'browser', 'revenue-cycle'],
  difficulty: 'INTERMEDIATE',
  estimatedMinutesSaved: 8,
  requiredIntegrations: ['portal_login'],
  optionalIntegrations: [],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['portalOrigin'],
    properties: {
      ...PORTAL_SETTINGS,
      claimsTable: { ...SELECTOR, default: '#claims' },
      claimColumn: { type: 'string', pattern: '^[A-Za-z0-9_ -]{1,100}$', default: 'Claim' },
      statusColumn: { type: 'string', pattern: '^[A-Za-z0-9_ -]{1,100}$', default: 'Status' },
    },
  },
  definition: {
    phi: ['input.memberId', 'result'],
    steps: [
      PORTAL_SIGN_IN,
      portalMemberSearch('claims', 'claimsTable', 'claims'),
      {
        id: 'result',
        type: 'transform',
        expression:
          '($row := steps.claims.extracted.claims[$lookup($, "[[config.claimColumn]]") = $$.input.claimId][0];' +
          ' { "claimId": input.claimId, "found": $exists($row), "status": $row ? $lookup($row, "[[config.statusColumn]]") : null })',
      },
    ],
  },
};
