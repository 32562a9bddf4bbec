import { SELECTOR, type OfficialTemplate } from '../types.js';
import { PORTAL_SETTINGS, PORTAL_SIGN_IN, portalMemberSearch } from './portal.js';

/**
 * Signs in to a payer portal and reads a member's coverage from its search
 * results. Sign-in is a step of its own (a step that types credentials is
 * never traced), and the lookup step reuses its session. Selectors and paths
 * are settings, with defaults, because every portal names its fields
 * differently. The member id and the result are PHI.
 */
export const payerEligibilityCheck: OfficialTemplate = {
  slug: 'payer-eligibility-check',
  name: 'Payer eligibility check',
  description:
    'Signs in to a payer portal with a stored login, searches a member id and returns the coverage table the portal shows. ' +
    'Run it with {"memberId": "..."} before a visit or a claim; the member id and the result are treated as PHI.',
  category: 'OPERATIONS',
  tags: ['healthcare', 'eligibility', 'payer', 'portal', 'browser', 'insurance'],
  difficulty: 'INTERMEDIATE',
  estimatedMinutesSaved: 6,
  requiredIntegrations: ['portal_login'],
  optionalIntegrations: [],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['portalOrigin'],
    properties: {
      ...PORTAL_SETTINGS,
      resultTable: { ...SELECTOR, default: '#coverage' },
    },
  },
  definition: {
    phi: ['input.memberId', 'result'],
    steps: [
      PORTAL_SIGN_IN,
      portalMemberSearch('lookup', 'resultTable', 'coverage'),
      {
        id: 'result',
        type: 'transform',
        expression: '{ "memberId": input.memberId, "eligible": $count(steps.lookup.extracted.coverage) > 0, "coverage": steps.lookup.extracted.coverage, "checkedAt": $now() }',
      },
    ],
  },
};
