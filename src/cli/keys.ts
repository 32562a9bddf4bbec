import { Command, InvalidArgumentError } from 'commander';
import type { Config } from '../config/index.js';
import { ValidationError } from '../errors/index.js';
import { ENCRYPTION_KEYS_ENV } from '../security/crypto.js';
import { rotateKeys } from '../security/key-rotation.js';
import { openKeyRing } from './keyring.js';
import { openRuntime } from './runtime.js';

function batchOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 10_000) throw new InvalidArgumentError('--batch-size must be an integer between 1 and 10000');
  return n;
}

/**
 * `stepwise keys rotate`: re-seal every credential and webhook secret under
 * the newest key of STEPWISE_ENCRYPTION_KEYS (put the new key first, keep
 * the old one after it until this has run). Resumable: run it again after an
 * interruption and it finishes the rest. Prints a JSON summary; exits 1 if
 * any row could not be opened with the ring.
 */
export function keyCommands(program: Command, config: (cmd: Command) => Config): void {
  const keys = program.command('keys').description('encryption keys of credentials and webhook secrets');
  keys
    .command('rotate')
    .description(`re-encrypt every secret under the newest key of ${ENCRYPTION_KEYS_ENV}, in batches, resumably`)
    .option('--batch-size <n>', 'rows per transaction', batchOption, 100)
    .action(async (opts: { batchSize: number }, cmd: Command) => {
      const { config: cfg, db, logger } = await openRuntime(config(cmd));
      try {
        const ring = openKeyRing(cfg, logger);
        if (!ring) throw new ValidationError(`${ENCRYPTION_KEYS_ENV} is not set; nothing to rotate to`, { path: ENCRYPTION_KEYS_ENV });
        const result = await rotateKeys(db, ring, { batchSize: opts.batchSize });
        process.stdout.write(`${JSON.stringify({ keyId: ring.currentKeyId, resealed: { credentials: result.credentials, webhooks: result.webhooks }, unreadable: result.unreadable })}\n`);
        if (result.unreadable.credentials.length + result.unreadable.webhooks.length > 0) process.exitCode = 1;
      } finally {
        await db.close();
      }
    });
}
