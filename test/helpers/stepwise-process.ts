import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How many log lines of each process are kept whole (the counts by message cover all of them). */
const KEPT_LINES = 500;

/** A pino line as the CLI writes it on stdout. */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/**
 * `stepwise serve` or `stepwise worker` run as production runs them: the
 * CLI (src/cli/main.ts through tsx) in a process of its own, its JSON log
 * lines read from stdout. For tests and benchmarks that restart the database
 * under running processes and look at what they logged and how much memory
 * they hold.
 */
export interface StepwiseProcess {
  /** 'api', 'worker-1', … (what the caller named it). */
  readonly name: string;
  readonly pid: number;
  /** The API's base URL (serve only). */
  readonly url: string | undefined;
  /** Log lines by message, all of them (a 503 storm logs thousands of the same line). */
  readonly messages: Map<string, number>;
  /** The first KEPT_LINES lines at warn or above, whole. */
  readonly errors: LogLine[];
  /** Whatever it wrote that was not a JSON line (its start banner, a crash's stack). */
  text(): string;
  /** Resident memory now, in bytes (VmRSS of /proc/<pid>/status). */
  rssBytes(): Promise<number>;
  /** CPU time used so far, user + system, in seconds (/proc/<pid>/stat, at the usual 100 ticks a second). */
  cpuSeconds(): Promise<number>;
  /** Set when it exited by itself; a process that dies under a database restart is the failure these tests look for. */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** SIGTERM, and SIGKILL if it has not exited within 15 s. */
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  databaseUrl: string;
  /** More of its environment (pool size, lease, STEPWISE_EGRESS_ALLOW, …). */
  env?: Record<string, string>;
  /** Give up waiting for its ready line after this long (default 60 s). */
  timeoutMs?: number;
}

const PINO_WARN = 40;

/** USER_HZ of /proc/<pid>/stat: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

function launch(args: string[], ready: RegExp, opts: StartOptions): Promise<StepwiseProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: opts.databaseUrl,
      // Never the embedded data directory of the machine: these processes run on the server.
      STEPWISE_DATA_DIR: '',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: '0',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages = new Map<string, number>();
  const errors: LogLine[] = [];
  let text = '';
  let pending = '';
  let exit: StepwiseProcess['exit'] = null;
  const exited = new Promise<void>((resolve) =>
    child.once('close', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const take = (line: string): void => {
    if (!line.startsWith('{')) {
      text += `${line}\n`;
      return;
    }
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      text += `${line}\n`;
      return;
    }
    messages.set(parsed.msg, (messages.get(parsed.msg) ?? 0) + 1);
    if (parsed.level >= PINO_WARN && errors.length < KEPT_LINES) errors.push(parsed);
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      take(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    // A crash's stack, or a line from a dependency: kept whole, bounded.
    if (text.length < 256 * 1024) text += chunk.toString();
  });
  const proc: StepwiseProcess = {
    name: opts.name,
    pid: child.pid!,
    url: undefined,
    messages,
    errors,
    text: () => text,
    async rssBytes() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      if (!kb) throw new Error(`no VmRSS for ${opts.name} (pid ${child.pid})`);
      return Number(kb[1]) * 1024;
    },
    async cpuSeconds() {
      const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8');
      // The fields after the command name (which may hold spaces) start after its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    },
    get exit() {
      return exit;
    },
    async stop() {
      if (exit) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.name} did not start within ${opts.timeoutMs ?? 60_000} ms:\n${text}`));
    }, opts.timeoutMs ?? 60_000);
    const check = (): void => {
      const m = ready.exec(text);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve(Object.assign(proc, { url: m[1] }));
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited (${JSON.stringify(exit)}) before it was ready:\n${text}`));
    });
  });
}

/** `stepwise serve --no-worker`: the API alone; resolves with its URL once it listens. */
export function startApi(opts: StartOptions): Promise<StepwiseProcess & { url: string }> {
  return launch(['serve', '--no-worker'], /listening on (http:\/\/[^\s]+)/, opts) as Promise<StepwiseProcess & { url: string }>;
}

/** `stepwise worker`: resolves once it says it runs. */
export function startWorkerProcess(opts: StartOptions): Promise<StepwiseProcess> {
  return launch(['worker'], /^Stepwise worker .* running/m, opts);
}
