import type { StepBase } from '../model/definition.js';
import { parseTemplate } from './definition/expressions.js';
import { isPlainObject } from '../util/json.js';
import { stepTypeOf } from './steps/registry.js';
import { StepError } from './steps/types.js';

/**
 * Credentials inside step execution. A step that mentions
 * `credentials.<name>` in a `{{ }}` template or a transform expression gets
 * those credentials decrypted into its scope for that attempt only; every
 * other step costs nothing (the scan is cached per step object, and
 * definitions are cached per worker). Whatever the step produces — output,
 * error message, log lines — has the secret values replaced before it is
 * recorded, so a service that echoes the Authorization header back does not
 * put the token into the stream, the checkpoint or the job result.
 */

/** Opens credentials for one step use and records the use (security/credentials.ts implements it). */
export interface CredentialResolver {
  resolve(
    use: { organizationId: string; jobId: string; stepId: string; actor: string },
    names: readonly string[],
  ): Promise<{ values: Record<string, Record<string, unknown>>; providers: Record<string, string>; missing: string[]; unreadable: string[] }>;
}

export interface StepUse {
  organizationId: string;
  jobId: string;
  stepId: string;
}

/** A resolver bound to the worker that uses it (the actor of the audit rows). */
export type StepCredentialOpener = (use: StepUse, names: readonly string[]) => ReturnType<CredentialResolver['resolve']>;

/** Bind a resolver to a worker id: its uses are audited as `worker:<id>`. */
export function credentialOpener(resolver: CredentialResolver, workerId: string): StepCredentialOpener {
  const actor = `worker:${workerId}`;
  return (use, names) => resolver.resolve({ ...use, actor }, names);
}

export const REDACTED = '[REDACTED]';
/** Secret values shorter than this are not searched for: "1" or "ab" would mangle every output. */
const MIN_REDACT_LENGTH = 4;

const REF_RE = /\bcredentials\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g;
const refsCache = new WeakMap<StepBase, string[]>();

function collect(value: unknown, names: Set<string>, isExpression: boolean): void {
  if (typeof value === 'string') {
    if (!value.includes('credentials')) return;
    const texts = isExpression ? [value] : parseTemplate(value).flatMap((seg) => ('expr' in seg ? [seg.expr] : []));
    for (const text of texts) for (const m of text.matchAll(REF_RE)) names.add(m[1]!);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, names, isExpression);
  } else if (isPlainObject(value)) {
    for (const v of Object.values(value)) collect(v, names, isExpression);
  }
}

/**
 * The credential names a step references: `credentials.<name>` in the
 * templates and expressions its type says it evaluates, plus the names its
 * type opens directly. Empty for almost every step.
 */
export function credentialRefs(step: StepBase): string[] {
  const hit = refsCache.get(step);
  if (hit) return hit;
  const type = stepTypeOf(step);
  const names = new Set<string>(type?.credentials(step) ?? []);
  if (type) {
    const sources = type.sources(step);
    collect(Object.values(sources.templates ?? {}), names, false);
    collect(Object.values(sources.expressions ?? {}), names, true);
  }
  const refs = [...names].sort();
  refsCache.set(step, refs);
  return refs;
}

/**
 * Fields of a known provider's secret that address a service rather than
 * unlock it: not redacted, so an error can name the SMTP host a step could
 * not reach and a sent message's `accepted` list keeps the sender's own
 * address (redacting every value turned "smtp.example.com:2525" into
 * "[REDACTED]:[REDACTED]", and any 2525 in an output with it). Every field
 * of any other provider, and every other field of these, stays secret.
 */
const PUBLIC_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  smtp: new Set(['host', 'port', 'secure', 'from']),
  openai: new Set(['baseUrl', 'apiVersion']),
  anthropic: new Set(['baseUrl']),
};

/** Replaces every occurrence of the given secret values in strings, deep. */
export class Redactor {
  private readonly secrets: string[];

  /** `providers` by credential name: fields a provider lists in PUBLIC_FIELDS are left as they are. */
  constructor(values: Record<string, Record<string, unknown>>, providers: Readonly<Record<string, string>> = {}) {
    const found = new Set<string>();
    for (const [name, fields] of Object.entries(values)) {
      const provider = providers[name];
      const open = provider !== undefined && Object.hasOwn(PUBLIC_FIELDS, provider) ? PUBLIC_FIELDS[provider] : undefined;
      for (const [field, v] of Object.entries(fields)) {
        if (open?.has(field)) continue;
        const text = typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
        if (text.length >= MIN_REDACT_LENGTH) found.add(text);
      }
    }
    // Longest first, so a secret containing another is replaced whole.
    this.secrets = [...found].sort((a, b) => b.length - a.length);
  }

  text(s: string): string {
    let out = s;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED);
    return out;
  }

  value<T>(v: T): T {
    if (this.secrets.length === 0) return v;
    return this.walk(v) as T;
  }

  private walk(v: unknown): unknown {
    if (typeof v === 'string') return this.text(v);
    if (typeof v === 'number' && this.secrets.includes(String(v))) return REDACTED;
    if (Array.isArray(v)) return v.map((x) => this.walk(x));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      // defineProperty: assigning a key named __proto__ would set the prototype and drop the key (a SQL column may be called that).
      for (const [k, x] of Object.entries(v)) Object.defineProperty(out, this.text(k), { value: this.walk(x), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return v;
  }
}

/** The credentials one attempt of a step opened: secrets and providers by name, and the redactor of everything it produces. */
export interface OpenedCredentials {
  values: Record<string, Record<string, unknown>>;
  providers: Record<string, string>;
  redactor: Redactor;
}

/**
 * Decrypt the credentials `names` for one attempt of one step. A missing
 * or unreadable credential fails the step with CREDENTIAL_NOT_FOUND /
 * CREDENTIAL_UNREADABLE naming it; a worker without a key ring fails it with
 * CREDENTIALS_UNAVAILABLE.
 */
export async function openStepCredentials(
  open: StepCredentialOpener | undefined,
  use: StepUse,
  names: readonly string[],
): Promise<OpenedCredentials> {
  if (!open) {
    throw new StepError('CREDENTIALS_UNAVAILABLE', `step uses credentials (${names.join(', ')}) but this worker has no encryption key ring`);
  }
  const opened = await open(use, names);
  if (opened.missing.length > 0) {
    throw new StepError('CREDENTIAL_NOT_FOUND', `credential ${opened.missing.map((n) => `"${n}"`).join(', ')} does not exist in this organization`, {
      credentials: opened.missing,
    });
  }
  if (opened.unreadable.length > 0) {
    throw new StepError(
      'CREDENTIAL_UNREADABLE',
      `credential ${opened.unreadable.map((n) => `"${n}"`).join(', ')} cannot be decrypted with this worker's key ring`,
      { credentials: opened.unreadable },
    );
  }
  return { values: opened.values, providers: opened.providers, redactor: new Redactor(opened.values, opened.providers) };
}
