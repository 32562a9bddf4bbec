import { Command, InvalidArgumentError } from 'commander';
import type { Config } from '../config/index.js';
import { cancelJob, retryJob, sendSignal, type RetryFrom } from '../engine/control.js';
import { NotFoundError, ValidationError } from '../errors/index.js';
import { jobView } from '../read/index.js';
import { findJob, updateOrganizationLimits } from '../store/index.js';
import { isUuid } from '../util/ids.js';
import { jsonOption, withOrg, type KeyOption } from './context.js';

function jobId(value: string): string {
  if (!isUuid(value)) throw new ValidationError(`job id must be a UUID, got "${value}"`, { path: 'jobId' });
  return value;
}

function retryFrom(value: string): RetryFrom {
  if (value !== 'failed-step' && value !== 'start') throw new InvalidArgumentError('--from must be failed-step or start');
  return value;
}

function limitOption(value: string): number | null {
  if (value === 'none') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError('must be an integer from 1 to 100000, or none');
  return n;
}

/** `stepwise job …` (control running jobs) and `stepwise org limit` — the CLI twins of the API routes. */
export function jobCommands(program: Command, config: (cmd: Command) => Config): void {
  const job = program.command('job').description('inspect and control jobs');
  const key = (c: Command) => c.option('-k, --key <key>', 'API key (default: STEPWISE_API_KEY)');

  key(job.command('get <jobId>').description('print a job'))
    .action(async (id: string, opts: KeyOption, cmd: Command) => {
      await withOrg(config(cmd), opts, `/v1/jobs/${jobId(id)}`, async (db, p) => {
        const found = await findJob(db, p.organizationId, id);
        if (!found) throw new NotFoundError('job', id);
        return jobView(found);
      });
    });

  key(job.command('signal <jobId> <name>').description('send a signal to a job (stored until a wait step takes it)'))
    .option('-p, --payload <json>', 'signal payload as JSON')
    .action(async (id: string, name: string, opts: KeyOption & { payload?: string }, cmd: Command) => {
      if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(name)) throw new ValidationError('signal name must be 1-100 of A-Z a-z 0-9 _ . : -', { path: 'name' });
      const payload = jsonOption('--payload', opts.payload);
      await withOrg(config(cmd), opts, `/v1/jobs/${jobId(id)}/signals/${name}`, (db, p) => sendSignal(db, p.organizationId, id, name, payload));
    });

  key(job.command('cancel <jobId>').description('cancel a job (honoured mid-step; compensations run if configured)'))
    .action(async (id: string, opts: KeyOption, cmd: Command) => {
      await withOrg(config(cmd), opts, `/v1/jobs/${jobId(id)}/cancel`, async (db, p) => {
        await cancelJob(db, p.organizationId, id);
        return { jobId: id, cancelRequested: true };
      });
    });

  key(job.command('retry <jobId>').description('run a FAILED, TIMED_OUT or CANCELLED job again as a new linked job'))
    .option('--from <where>', 'failed-step (reuse succeeded outputs) or start', retryFrom, 'failed-step' as RetryFrom)
    .action(async (id: string, opts: KeyOption & { from: RetryFrom }, cmd: Command) => {
      const cfg = config(cmd);
      await withOrg(cfg, opts, `/v1/jobs/${jobId(id)}/retry`, async (db, p) => {
        const created = await retryJob(db, p.organizationId, id, opts.from, cfg.worker.checkpointTtlMs);
        return { jobId: created.id, runNumber: created.runNumber, status: created.status, retryOf: id };
      });
    });

  const org = program.commands.find((c) => c.name() === 'org') ?? program.command('org');
  key(org.command('limit').description("set the key's organization limit on jobs running at once"))
    .requiredOption('--max-concurrent-runs <n>', 'a number, or none to remove the limit', limitOption)
    .action(async (opts: KeyOption & { maxConcurrentRuns: number | null }, cmd: Command) => {
      await withOrg(config(cmd), opts, '/v1/organization', async (db, p) => {
        await updateOrganizationLimits(db, p.organizationId, { maxConcurrentRuns: opts.maxConcurrentRuns });
        return { organizationId: p.organizationId, maxConcurrentRuns: opts.maxConcurrentRuns };
      });
    });
}
