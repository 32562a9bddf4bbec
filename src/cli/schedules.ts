import { Command, InvalidArgumentError } from 'commander';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { compileCron } from '../engine/schedule-timing.js';
import { defineSchedule, pauseSchedule, removeSchedule, resumeSchedule } from '../engine/schedules.js';
import { ValidationError } from '../errors/index.js';
import { scheduleView } from '../read/index.js';
import type { Principal } from '../security/index.js';
import { findSchedules, type MisfirePolicy } from '../store/index.js';
import { isUuid } from '../util/ids.js';
import { jsonOption, withOrg, type KeyOption } from './context.js';

interface CreateOptions extends KeyOption {
  workflow: string;
  cron: string;
  name?: string;
  timezone?: string;
  input?: string;
  misfire?: MisfirePolicy;
  disabled?: boolean;
}

function misfireOption(value: string): MisfirePolicy {
  if (value === 'skip') return 'SKIP';
  if (value === 'run-once') return 'RUN_ONCE';
  throw new InvalidArgumentError('--misfire must be skip or run-once');
}

function uuidArg(name: string, value: string): string {
  if (!isUuid(value)) throw new ValidationError(`${name} must be a UUID, got "${value}"`, { path: name });
  return value;
}

/** Changes are audited as 'cli:<key id>': the change came from the CLI, and the key says who. */
function withScheduleOrg(config: Config, opts: KeyOption, fn: (db: Db, principal: Principal, actor: string) => Promise<unknown>): Promise<void> {
  return withOrg(config, opts, '/v1/schedules', (db, principal) => fn(db, principal, `cli:${principal.apiKeyId}`));
}

/** `stepwise schedule …`: create, list, pause, resume and delete cron schedules straight on the database. */
export function scheduleCommands(program: Command, config: (cmd: Command) => Config): void {
  const schedule = program.command('schedule').description('cron schedules that start runs of a workflow');
  const keyOption = ['-k, --key <key>', 'API key (default: STEPWISE_API_KEY)'] as const;

  schedule
    .command('create')
    .description('create a schedule and print it (with its next fire time)')
    .option(...keyOption)
    .requiredOption('--workflow <id>', 'workflow to run')
    .requiredOption('--cron <expr>', 'five-field cron expression, e.g. "30 2 * * *", or @daily')
    .option('--name <name>', 'name (default: the cron expression)')
    .option('--timezone <zone>', 'IANA time zone (default: UTC)')
    .option('-i, --input <json>', 'input of every run, as JSON')
    .option('--misfire <policy>', 'after downtime: skip (default) or run-once', misfireOption)
    .option('--disabled', 'create it paused')
    .action(async (opts: CreateOptions, cmd: Command) => {
      // Checked before the database is opened, naming the flags rather than API fields.
      const workflowId = uuidArg('--workflow', opts.workflow);
      compileCron({ cron: opts.cron, timezone: opts.timezone ?? 'UTC' }, { cron: '--cron', timezone: '--timezone' });
      const input = jsonOption('--input', opts.input);
      await withScheduleOrg(config(cmd), opts, async (db, p, actor) =>
        scheduleView(
          await defineSchedule(db, p.organizationId, actor, {
            workflowId,
            name: opts.name ?? opts.cron.trim(),
            cron: opts.cron,
            timezone: opts.timezone,
            input,
            enabled: !opts.disabled,
            misfirePolicy: opts.misfire,
          }),
        ),
      );
    });

  schedule
    .command('list')
    .description("list the organization's schedules, newest first")
    .option(...keyOption)
    .action(async (opts: KeyOption, cmd: Command) => {
      await withScheduleOrg(config(cmd), opts, async (db, p) => {
        const items = [];
        let after: string | undefined;
        do {
          const found = await findSchedules(db, p.organizationId, { after, limit: 500 });
          items.push(...found.items.map(scheduleView));
          after = found.nextCursor ?? undefined;
        } while (after);
        return items;
      });
    });

  const change = (name: string, description: string, fn: typeof pauseSchedule) =>
    schedule
      .command(`${name} <id>`)
      .description(description)
      .option(...keyOption)
      .action(async (id: string, opts: KeyOption, cmd: Command) => {
        const scheduleId = uuidArg('<id>', id);
        await withScheduleOrg(config(cmd), opts, async (db, p, actor) => scheduleView(await fn(db, p.organizationId, actor, scheduleId)));
      });
  change('pause', 'stop a schedule firing until resumed', pauseSchedule);
  change('resume', 'fire again from the next fire time after now', (db, org, actor, id) => resumeSchedule(db, org, actor, id));
  change('delete', 'delete a schedule (its audit trail is kept)', removeSchedule);
}
