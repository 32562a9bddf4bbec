import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger (JSON lines on stdout). `silent` in tests. */
export function createLogger(level: string = 'info'): Logger {
  return pino({ level, base: { service: 'stepwise' } });
}

/**
 * A logger on stderr (synchronous, so a line written just before exit is
 * not lost), for library objects opened without the process logger. Stderr
 * keeps stdout clean for the CLI's JSON output.
 */
export function createStderrLogger(level: string = 'info'): Logger {
  return pino({ level, base: { service: 'stepwise' } }, pino.destination({ dest: 2, sync: true }));
}
