import { Command, InvalidArgumentError } from 'commander';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { NotFoundError, ValidationError } from '../errors/index.js';
import { checkPasswordRules, inviteUser, setUserPassword } from '../security/index.js';
import { findUsersByEmail, type User } from '../store/index.js';
import { isUuid } from '../util/ids.js';
import { openRuntime } from './runtime.js';

interface UserOptions {
  email: string;
  org?: string;
}

function orgOption(value: string): string {
  if (!isUuid(value)) throw new InvalidArgumentError('--org must be an organization id (a UUID)');
  return value;
}

/** The one user with this email (in --org, or in the only organization that has it). */
async function resolveUser(db: Db, opts: UserOptions): Promise<User> {
  const users = await findUsersByEmail(db, opts.email, opts.org);
  if (users.length === 0) throw new NotFoundError('user with email', opts.email + (opts.org ? ` in organization ${opts.org}` : ''));
  if (users.length > 1) {
    throw new ValidationError(
      `${opts.email} is a user of ${users.length} organizations (${users.map((u) => u.organizationId).join(', ')}); choose one with --org`,
      { path: '--org' },
    );
  }
  return users[0]!;
}

/** Read a line from a terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new ValidationError('cancelled: no password was set', { path: 'stdin' }));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** All of stdin, less one trailing line break (what `echo pw |` or a file adds). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * `stepwise user set-password` and `stepwise user invite`: what an operator
 * with database access does for a user who cannot sign in to the dashboard
 * yet. The password is read from stdin (a pipe, or typed without echo on a
 * terminal), never from an argument, so it stays out of shell history and
 * the process list.
 */
export function userCommands(program: Command, config: (cmd: Command) => Config): void {
  const user = program.command('user').description('dashboard sign-in of users');
  user
    .command('set-password')
    .description('set a user\'s dashboard password, read from stdin (at least 12 characters); their password sessions end')
    .requiredOption('--email <email>', 'the user\'s email')
    .option('--org <id>', 'organization id, when the email is a user of several', orgOption)
    .option('--password-stdin', 'read the password from stdin (the default; on a terminal it is asked for without echo)')
    .action(async (opts: UserOptions & { passwordStdin?: boolean }, cmd: Command) => {
      const password = process.stdin.isTTY ? await promptHidden('Password: ') : await readStdin();
      checkPasswordRules(password, 'stdin');
      const { db } = await openRuntime(config(cmd));
      try {
        const u = await resolveUser(db, opts);
        await setUserPassword(db, u.organizationId, u.id, password, 'stdin');
        process.stdout.write(`${JSON.stringify({ userId: u.id, organizationId: u.organizationId, email: u.email, passwordSet: true })}\n`);
      } finally {
        await db.close();
      }
    });
  user
    .command('invite')
    .description('print a single-use link path (valid 72 h) for the user to set their password in the dashboard')
    .requiredOption('--email <email>', 'the user\'s email')
    .option('--org <id>', 'organization id, when the email is a user of several', orgOption)
    .action(async (opts: UserOptions, cmd: Command) => {
      const { db } = await openRuntime(config(cmd));
      try {
        const u = await resolveUser(db, opts);
        if (u.disabledAt) throw new ValidationError(`user ${u.email} is disabled; enable them before inviting them`, { path: '--email' });
        const invitation = await inviteUser(db, u.organizationId, u.id, 'cli');
        process.stdout.write(`${JSON.stringify({ userId: u.id, organizationId: u.organizationId, path: invitation.path, expiresAt: invitation.expiresAt })}\n`);
      } finally {
        await db.close();
      }
    });
}
