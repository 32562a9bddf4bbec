import type { Config } from '../config/index.js';
import { loadKeyRing, type KeyRing } from '../security/crypto.js';
import type { Logger } from '../util/logger.js';

/**
 * The process's encryption key ring (security/crypto.ts): from
 * STEPWISE_ENCRYPTION_KEYS, or in embedded mode from the data directory,
 * generated on first start — which is said out loud, since losing that file
 * means losing every credential sealed with it.
 */
export function openKeyRing(config: Config, logger: Logger, env: Record<string, string | undefined> = process.env): KeyRing | null {
  const { ring, generatedFile } = loadKeyRing(env, { embedded: config.databaseUrl === undefined, dataDir: config.dataDir });
  if (generatedFile) {
    logger.warn({ file: generatedFile }, 'generated an encryption key for credentials; back this file up with the data directory');
    // stderr: stdout of commands such as `run` is machine-readable JSON.
    process.stderr.write(`Generated an encryption key for credentials at ${generatedFile} (mode 0600); back it up with the data directory.\n`);
  }
  if (!ring) logger.warn('STEPWISE_ENCRYPTION_KEYS is not set: credentials are unavailable until it is');
  return ring;
}
