#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type ConfigOverrides } from '../config/index.js';
import { isStepwiseError, ValidationError } from '../errors/index.js';
import { isUuid } from '../util/ids.js';
import { migrate } from '../db/index.js';
import { createOrganizationWithOwner, DEFAULT_OWNER_EMAIL, renderPermissionMatrix } from '../security/index.js';
import { isPlan, PLANS, type Plan } from '../store/index.js';
import { openRuntime, VERSION } from './runtime.js';
import { serve } from './serve.js';
import { runWorker } from './worker.js';
import { runWorkflow } from './run.js';
import { scheduleCommands } from './schedules.js';
import { jobCommands } from './jobs.js';
import { reconcileReadModel } from '../lifecycle/index.js';
import { lifecycleCommands } from './lifecycle.js';
import { keyCommands } from './keys.js';
import { userCommands } from './users.js';
import { workflowCommands } from './workflows.js';
import { backupCommands } from './backup.js';

function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer between ${min} and ${max}`);
    return n;
  };
}

function planOption(value: string): Plan {
  if (!isPlan(value)) throw new InvalidArgumentError(`--plan must be one of ${PLANS.join(', ')}`);
  return value;
}

interface GlobalOptions {
  databaseUrl?: string;
  dataDir?: string;
}

function config(cmd: Command, extra: ConfigOverrides = {}) {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  return loadConfig(process.env, {
    ...(g.databaseUrl ? { databaseUrl: g.databaseUrl } : {}),
    ...(g.dataDir ? { dataDir: g.dataDir } : {}),
    ...extra,
  });
}

const program = new Command()
  .name('stepwise')
  .description('Durable workflow orchestration with a complete execution record')
  .version(VERSION)
  .option('--database-url <url>', 'PostgreSQL server (default: DATABASE_URL; none = embedded PGlite)')
  .option('--data-dir <dir>', 'embedded data directory (default: STEPWISE_DATA_DIR or ./.stepwise/data)')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the API and a worker in one process')
  .option('-p, --port <port>', 'HTTP port (default: PORT or 3000)', intOption('--port', 0, 65535))
  .option('--host <host>', 'address to listen on (default: HOST or 127.0.0.1)')
  .option('--no-worker', 'API only, no worker in this process')
  .action(async (opts: { port?: number; host?: string; worker: boolean }, cmd: Command) => {
    await serve(config(cmd, { ...(opts.port !== undefined ? { port: opts.port } : {}), ...(opts.host ? { host: opts.host } : {}) }), {
      worker: opts.worker,
    });
  });

program
  .command('worker')
  .description('run a worker alone against a PostgreSQL server (start as many as you like)')
  .option('-c, --concurrency <n>', 'jobs run at once', intOption('--concurrency', 1, 10_000))
  .action(async (opts: { concurrency?: number }, cmd: Command) => {
    await runWorker(config(cmd, opts.concurrency ? { worker: { concurrency: opts.concurrency } } : {}));
  });

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(async (_opts: unknown, cmd: Command) => {
    const { config: cfg, db, logger } = await openRuntime(config(cmd), { migrate: false });
    try {
      const { applied, total } = await migrate(db, undefined, { lockTimeoutMs: cfg.migrationLockTimeoutMs, logger });
      process.stdout.write(`${JSON.stringify({ applied, total })}\n`);
    } finally {
      await db.close();
    }
  });

const org = program.command('org').description('organizations');
org
  .command('create')
  .description('create an organization and print an owner API key (shown once)')
  .requiredOption('--name <name>', 'organization name')
  .option('--plan <plan>', `plan: ${PLANS.join(', ')}`, planOption, 'STARTER')
  .option('--owner-email <email>', 'email of the OWNER user created with the key', DEFAULT_OWNER_EMAIL)
  .action(async (opts: { name: string; plan: Plan; ownerEmail: string }, cmd: Command) => {
    const { db } = await openRuntime(config(cmd));
    try {
      const created = await createOrganizationWithOwner(db, {
        name: opts.name,
        plan: opts.plan,
        ownerEmail: opts.ownerEmail,
        keyName: 'owner key (stepwise org create)',
      });
      const o = created.organization;
      process.stdout.write(
        `${JSON.stringify({ organizationId: o.id, name: o.name, plan: o.plan, ownerUserId: created.owner.id, apiKey: created.apiKey.key })}\n`,
      );
    } finally {
      await db.close();
    }
  });

program
  .command('permissions')
  .description('print the permission matrix: each action and the least role that may perform it')
  .action(() => {
    process.stdout.write(`${renderPermissionMatrix()}\n`);
  });

program
  .command('run <workflowId>')
  .description('start a run of a workflow')
  .option('-k, --key <key>', 'API key (default: STEPWISE_API_KEY)')
  .option('--url <url>', 'go through a running service at this URL (default: STEPWISE_URL; none = database directly)')
  .option('-i, --input <json>', 'run input as JSON')
  .option('--input-file <path>', 'run input from a JSON file')
  .option('--client-id <id>', 'client the run is on behalf of')
  .option('--idempotency-key <key>', 'same key, same job')
  .option('-w, --wait', 'wait for the job to end and print it with its stream (exit 1 unless COMPLETED)', false)
  .action(async (workflowId: string, opts: Parameters<typeof runWorkflow>[2], cmd: Command) => {
    await runWorkflow(config(cmd), workflowId, opts);
  });

program
  .command('reconcile')
  .description('check the dashboard read model (execution_metadata, aggregates) against jobs; print the drift as JSON')
  .option('--organization <id>', 'one organization only (default: all)')
  .option('--repair', 'rewrite drifted rows from jobs and report again', false)
  .action(async (opts: { organization?: string; repair: boolean }, cmd: Command) => {
    if (opts.organization !== undefined && !isUuid(opts.organization)) {
      throw new ValidationError('--organization must be an organization id (a UUID)', { path: '--organization' });
    }
    const { db } = await openRuntime(config(cmd));
    try {
      const report = await reconcileReadModel(db, { organizationId: opts.organization ?? null, repair: opts.repair });
      process.stdout.write(`${JSON.stringify(report)}\n`);
      // Drift left behind is a failure for scripts (cron, CI): exit 2.
      if (!report.clean) process.exitCode = 2;
    } finally {
      await db.close();
    }
  });

scheduleCommands(program, (cmd) => config(cmd));
workflowCommands(program, (cmd) => config(cmd));
keyCommands(program, (cmd) => config(cmd));
userCommands(program, (cmd) => config(cmd));
jobCommands(program, (cmd) => config(cmd));
lifecycleCommands(program, (cmd) => config(cmd));
backupCommands(program, (cmd) => config(cmd));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isStepwiseError(err)) {
    process.stderr.write(`error: ${err.message}\n`);
    if (typeof err.details.path === 'string') process.stderr.write(`  (at ${err.details.path})\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  }
  process.exit(1);
});
