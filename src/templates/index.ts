export { OFFICIAL_TEMPLATES } from './official/index.js';
export type { OfficialTemplate } from './types.js';
export { syncOfficialTemplates } from './sync.js';
export { instantiateTemplate, type InstantiateRequest, type Instantiated } from './instantiate.js';
export { applyConfig, checkConfig, compileSettingsSchema, placeholderPaths } from './config.js';
export { checkCommunityTemplate } from './community.js';
