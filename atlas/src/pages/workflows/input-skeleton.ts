/**
 * What the "Run now" editor starts with. Definitions have no input schema;
 * a definition may carry an example (`inputExample`, or `input.example` /
 * `examples[0]` if an author added one), and otherwise the paths it names
 * (searchKeys and PHI paths under `input.`) make an object to fill in.
 */
export function inputSkeleton(definition: unknown): unknown {
  if (definition === null || typeof definition !== 'object') return {};
  const d = definition as Record<string, unknown>;
  if (d.inputExample !== undefined) return d.inputExample;
  const input = d.input as Record<string, unknown> | undefined;
  if (input && typeof input === 'object' && input.example !== undefined) return input.example;
  if (Array.isArray(d.examples) && d.examples.length > 0) return d.examples[0];
  const paths = [...(Array.isArray(d.searchKeys) ? d.searchKeys : []), ...(Array.isArray(d.phi) ? d.phi : [])].filter(
    (p): p is string => typeof p === 'string' && p.startsWith('input.'),
  );
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    const parts = path.split('.').slice(1);
    // Keys come from a definition: never walk onto a prototype.
    if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) continue;
    let at = out;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) {
        if (!Object.hasOwn(at, part)) at[part] = '';
      } else {
        const next = at[part];
        if (next === null || typeof next !== 'object') at[part] = {};
        at = at[part] as Record<string, unknown>;
      }
    });
  }
  return out;
}
