import { ValidationError } from '../errors/index.js';
import { isPlainObject } from '../util/json.js';
import { compileSettingsSchema, placeholderPaths } from './config.js';

/**
 * What can be checked of a template before anyone configures it: its
 * settings schema compiles, and every placeholder of its definition names a
 * property the schema declares (a typo would otherwise surface only at
 * instantiation, as a config field nobody can supply). The definition itself
 * is validated, with its placeholders filled, when it is instantiated.
 */
export function checkCommunityTemplate(definition: Record<string, unknown>, settingsSchema: Record<string, unknown>, base = '/body'): void {
  compileSettingsSchema(settingsSchema, `${base}/settingsSchema`);
  const declared = isPlainObject(settingsSchema.properties) ? settingsSchema.properties : {};
  for (const path of placeholderPaths(definition)) {
    const top = path.split('.')[0]!;
    if (!Object.hasOwn(declared, top)) {
      throw new ValidationError(`${base}/definition uses config "${path}", which ${base}/settingsSchema/properties does not declare`, {
        path: `${base}/definition`,
        config: path,
      });
    }
  }
}
