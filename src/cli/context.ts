import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { DataDirLockedError, UnauthorizedError, ValidationError } from '../errors/index.js';
import { authenticate, type Principal } from '../security/index.js';
import { openRuntime } from './runtime.js';

export interface KeyOption {
  key?: string;
}

/**
 * Open the database, resolve the API key to its organization (the key names
 * the tenant, as on the API) and run `fn`, printing its result as JSON.
 * `apiPath` is where a running service offers the same operation, for the
 * hint when that service owns the embedded data directory.
 */
export async function withOrg(
  config: Config,
  opts: KeyOption,
  apiPath: string,
  fn: (db: Db, principal: Principal) => Promise<unknown>,
): Promise<void> {
  const key = opts.key ?? process.env.STEPWISE_API_KEY;
  if (!key) throw new ValidationError('an API key is needed: --key or STEPWISE_API_KEY', { path: '--key' });
  let runtime;
  try {
    runtime = await openRuntime(config);
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      process.stderr.write(`hint: a running service owns the data directory; use its API at http://${config.host}:${config.port}${apiPath}\n`);
    }
    throw err;
  }
  const { db } = runtime;
  try {
    const principal = await authenticate(db, key).catch(() => {
      throw new UnauthorizedError('the API key is not valid for this database');
    });
    const out = await fn(db, principal);
    process.stdout.write(`${JSON.stringify(out)}\n`);
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
