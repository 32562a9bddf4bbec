import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger (JSON lines on stdout). `silent` in tests. */
export function createLogger(level: string = 'info'): Logger {
  return pino({ level, base: { service: 'stepwise' } });
}
