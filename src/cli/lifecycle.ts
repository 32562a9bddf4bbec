import { Command, InvalidArgumentError } from 'commander';
import { createBlobStore } from '../blob/index.js';
import type { Config } from '../config/index.js';
import { ValidationError } from '../errors/index.js';
import { parseResourceType, restoreJob, restoreRange, runMaintenance, setRetentionPolicy } from '../lifecycle/index.js';
import { getRetentionPolicy, listRetentionPolicies } from '../store/index.js';
import { isUuid } from '../util/ids.js';
import { withOrg, type KeyOption } from './context.js';
import { openRuntime } from './runtime.js';

function timeOption(flag: string) {
  return (value: string): Date => {
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`${flag} must be a date or time (ISO 8601), got "${value}"`);
    return d;
  };
}

/** Commander stores a parser's null as "", so "never" travels as this and becomes null in the action. */
const NEVER = -1;

function daysOption(flag: string, nullable: boolean) {
  return (value: string): number => {
    if (nullable && value === 'never') return NEVER;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 36_500) throw new InvalidArgumentError(`${flag} must be a whole number of days from 1 to 36500${nullable ? ', or never' : ''}`);
    return n;
  };
}

function uuidOption(flag: string) {
  return (value: string): string => {
    if (!isUuid(value)) throw new InvalidArgumentError(`${flag} must be a UUID, got "${value}"`);
    return value;
  };
}

/** Open the database and the configured blob store, run `fn`, print its result as JSON, close both. */
async function withStores(config: Config, fn: (rt: Awaited<ReturnType<typeof openRuntime>>, blobs: Awaited<ReturnType<typeof createBlobStore>>) => Promise<unknown>): Promise<void> {
  const rt = await openRuntime(config);
  try {
    const blobs = await createBlobStore(config.blob);
    try {
      process.stdout.write(`${JSON.stringify(await fn(rt, blobs))}\n`);
    } finally {
      await blobs.close();
    }
  } finally {
    await rt.db.close();
  }
}

/** `stepwise maintain`, `stepwise restore` (operator commands, all organizations) and `stepwise retention` (per organization, by key). */
export function lifecycleCommands(program: Command, config: (cmd: Command) => Config): void {
  program
    .command('maintain')
    .description('run data maintenance once: archive streams past the hot window, drop archived month partitions, delete expired archives')
    .option('--as-of <time>', 'apply the retention policies as on this date (see what a policy will do then)', timeOption('--as-of'))
    .option('--dry-run', 'print what would happen as JSON; change nothing', false)
    .action(async (opts: { asOf?: Date; dryRun: boolean }, cmd: Command) => {
      await withStores(config(cmd), (rt, blobs) =>
        runMaintenance(rt.db, blobs, { dryRun: opts.dryRun, ...(opts.asOf ? { asOf: opts.asOf } : {}) }),
      );
    });

  program
    .command('restore')
    .description('bring archived stream rows back into hot storage (by job, or every job archived in a time range)')
    .option('--job <id>', 'the job to restore', uuidOption('--job'))
    .option('--from <time>', 'restore jobs with archived rows written from this time', timeOption('--from'))
    .option('--to <time>', '… up to (not including) this time', timeOption('--to'))
    .option('--org <id>', 'with --from/--to: only this organization', uuidOption('--org'))
    .option('--hold-days <n>', 'keep restored jobs hot this many days before archiving them again', daysOption('--hold-days', false), 30)
    .action(async (opts: { job?: string; from?: Date; to?: Date; org?: string; holdDays: number }, cmd: Command) => {
      if (opts.job && (opts.from || opts.to)) throw new ValidationError('give either --job or --from/--to, not both', { path: '--job' });
      if (!opts.job && !(opts.from && opts.to)) throw new ValidationError('give --job <id>, or both --from and --to', { path: '--job' });
      if (opts.from && opts.to && opts.from >= opts.to) throw new ValidationError('--from must be before --to', { path: '--from' });
      await withStores(config(cmd), (rt, blobs) =>
        opts.job
          ? restoreJob(rt.db, blobs, opts.job, { holdDays: opts.holdDays })
          : restoreRange(rt.db, blobs, { from: opts.from!, to: opts.to!, organizationId: opts.org ?? null }, { holdDays: opts.holdDays }),
      );
    });

  const retention = program.command('retention').description("the key's organization's retention policies");
  const key = (c: Command) => c.option('-k, --key <key>', 'API key (default: STEPWISE_API_KEY)');
  key(retention.command('list').description('print every resource type\'s policy (defaults where none was set)'))
    .action(async (opts: KeyOption, cmd: Command) => {
      await withOrg(config(cmd), opts, '/v1/retention-policies', async (db, p) => ({ items: await listRetentionPolicies(db, p.organizationId) }));
    });
  key(retention.command('set <resourceType>').description('set a policy: execution_log, screenshot, job, job_result or phi_audit'))
    .option('--hot-days <n>', 'days kept in PostgreSQL', daysOption('--hot-days', false))
    .option('--archive-days <n>', 'days kept at least, archived', daysOption('--archive-days', false))
    .option('--delete-after-days <n>', 'days after which archives are deleted, or never', daysOption('--delete-after-days', true))
    .action(async (type: string, opts: KeyOption & { hotDays?: number; archiveDays?: number; deleteAfterDays?: number }, cmd: Command) => {
      const resourceType = parseResourceType(type);
      await withOrg(config(cmd), opts, `/v1/retention-policies/${resourceType}`, async (db, p) => {
        const current = await getRetentionPolicy(db, p.organizationId, resourceType);
        return setRetentionPolicy(db, p.organizationId, resourceType, {
          hotRetentionDays: opts.hotDays ?? current.hotRetentionDays,
          archiveRetentionDays: opts.archiveDays ?? current.archiveRetentionDays,
          deleteAfterDays: opts.deleteAfterDays === undefined ? current.deleteAfterDays : opts.deleteAfterDays === NEVER ? null : opts.deleteAfterDays,
        });
      });
    });
}
