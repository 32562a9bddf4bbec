import type { Db } from '../db/index.js';
import { defineWorkflow } from '../engine/index.js';
import { NotFoundError } from '../errors/index.js';
import { countTemplateUse, findTemplate, providersWithoutCredential, type Workflow } from '../store/index.js';
import { applyConfig, checkConfig } from './config.js';

export interface InstantiateRequest {
  name: string;
  description?: string | null | undefined;
  config?: unknown;
}

export interface Instantiated {
  workflow: Workflow;
  /** The config as used: the caller's values plus the settings schema's defaults. */
  config: Record<string, unknown>;
  /** Required providers the organization has no credential of yet (the workflow's runs fail until they exist). */
  missingIntegrations: string[];
}

/**
 * A workflow of `organizationId` made from a template it may read: the
 * config checked against the template's settings schema (400 naming
 * `/body/config/<field>`), placeholders filled, then created by the same use
 * case as POST /v1/workflows (definition validated, counted against the
 * plan: 400/402/413 as that route answers), and the template's popularity
 * counted. Call it inside one transaction (the API's request transaction):
 * any refusal leaves neither the workflow nor the count.
 */
export async function instantiateTemplate(db: Db, organizationId: string, templateId: string, req: InstantiateRequest): Promise<Instantiated> {
  const template = await findTemplate(db, organizationId, templateId);
  if (!template) throw new NotFoundError('template', templateId);
  const config = checkConfig(template.settingsSchema, req.config ?? {});
  const definition = applyConfig(template.definition, config);
  const workflow = await defineWorkflow(db, organizationId, {
    name: req.name,
    description: req.description === undefined ? template.description.slice(0, 2000) : req.description,
    category: template.category,
    definition,
  });
  await countTemplateUse(db, organizationId, templateId);
  const missingIntegrations = await providersWithoutCredential(db, organizationId, template.requiredIntegrations);
  return { workflow, config, missingIntegrations };
}
