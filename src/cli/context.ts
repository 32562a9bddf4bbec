import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { DataDirLockedError, UnauthorizedError, ValidationError } from '../errors/index.js';
import { authenticate, type Principal } from '../security/index.js';
import { openRuntime, type Runtime } from './runtime.js';

export interface KeyOption {
  key?: string;
}

/**
 * Open the database and resolve the API key to its organization (the key
 * names the tenant, as on the API). `hint` is printed when a running service
 * owns the embedded data directory, saying how to go through it instead.
 * The caller closes `db`.
 */
export async function openForKey(config: Config, key: string, hint: string): Promise<Runtime & { principal: Principal }> {
  let runtime: Runtime;
  try {
    runtime = await openRuntime(config);
  } catch (err) {
    if (err instanceof DataDirLockedError) process.stderr.write(`hint: a running service owns the data directory; ${hint}\n`);
    throw err;
  }
  try {
    const principal = await authenticate(runtime.db, key).catch(() => {
      throw new UnauthorizedError('the API key is not valid for this database');
    });
    return { ...runtime, principal };
  } catch (err) {
    await runtime.db.close();
    throw err;
  }
}

/** The key from --key or STEPWISE_API_KEY, or a clear error. */
export function requireKey(opts: KeyOption): string {
  const key = opts.key ?? process.env.STEPWISE_API_KEY;
  if (!key) throw new ValidationError('an API key is needed: --key or STEPWISE_API_KEY', { path: '--key' });
  return key;
}

/**
 * Run `fn` for the key's organization and print its result as JSON.
 * `apiPath` is where a running service offers the same operation.
 */
export async function withOrg(
  config: Config,
  opts: KeyOption,
  apiPath: string,
  fn: (db: Db, principal: Principal) => Promise<unknown>,
): Promise<void> {
  const { db, principal } = await openForKey(config, requireKey(opts), `use its API at http://${config.host}:${config.port}${apiPath}`);
  try {
    process.stdout.write(`${JSON.stringify(await fn(db, principal))}\n`);
  } finally {
    await db.close();
  }
}

/** Parse a JSON option, naming it when it is not JSON. */
export function jsonOption(flag: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`${flag} is not valid JSON`, { path: flag });
  }
}
