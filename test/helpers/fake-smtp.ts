import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * An SMTP server for tests: 127.0.0.1, a free port, no TLS. Accepted
 * messages are parsed (mailparser) into `messages`, their envelopes into
 * `envelopes`, in arrival order.
 */
export interface FakeSmtp {
  host: string;
  port: number;
  messages: ParsedMail[];
  envelopes: { from: string; to: string[] }[];
  /** Messages answered with a code given to `reject`, parsed, in order. */
  refused: ParsedMail[];
  /** Resolves once at least `count` messages arrived (rejects after 10 s, naming how many did). */
  waitFor(count: number): Promise<void>;
  /** Answer the next DATA with this SMTP code (one message only; null: accept it). */
  reject(code: number | null): void;
  /** Connections that opened, whatever became of them. */
  connections(): number;
  close(): Promise<void>;
}

export interface FakeSmtpOptions {
  /** With both, AUTH is required and only these pass (535 otherwise). Without, no AUTH is offered. */
  user?: string;
  password?: string;
  /** Recipients answered 550 at RCPT TO (the message goes to the others). */
  rejectRecipients?: string[];
}

const MESSAGES: Record<number, string> = { 421: 'Service not available', 451: 'Try again later', 452: 'Insufficient storage', 550: 'Mailbox unavailable', 552: 'Message too large', 554: 'Transaction failed' };

function smtpError(code: number): Error {
  return Object.assign(new Error(MESSAGES[code] ?? `Refused with ${code}`), { responseCode: code });
}

export async function startFakeSmtp(options: FakeSmtpOptions = {}): Promise<FakeSmtp> {
  const messages: ParsedMail[] = [];
  const refused: ParsedMail[] = [];
  const envelopes: { from: string; to: string[] }[] = [];
  const waiters: { count: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  let failure: Error | null = null;
  let nextCode: number | null = null;
  let opened = 0;
  const withAuth = options.user !== undefined;
  const refusedRecipients = new Set((options.rejectRecipients ?? []).map((a) => a.toLowerCase()));

  const arrived = () => {
    for (const w of [...waiters]) {
      if (messages.length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };

  const server = new SMTPServer({
    secure: false,
    logger: false,
    disabledCommands: withAuth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !withAuth,
    allowInsecureAuth: true,
    // Connections still open at close() are dropped after 1 s, not smtp-server's 30 s.
    closeTimeout: 1_000,
    onConnect(_session, callback) {
      opened++;
      callback();
    },
    onAuth(auth, _session, callback) {
      if (auth.username === options.user && auth.password === options.password) return callback(null, { user: auth.username });
      return callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, callback) {
      callback(refusedRecipients.has(address.address.toLowerCase()) ? smtpError(550) : null);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const code = nextCode;
        nextCode = null;
        if (code !== null) {
          // Parsed before answering, so it is in `refused` by the time the client hears the code.
          void simpleParser(Buffer.concat(chunks)).then(
            (parsed) => (refused.push(parsed), callback(smtpError(code))),
            () => callback(smtpError(code)),
          );
          return;
        }
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        };
        callback(null);
        simpleParser(Buffer.concat(chunks)).then(
          (parsed) => {
            envelopes.push(envelope);
            messages.push(parsed);
            arrived();
          },
          (err: unknown) => {
            // Nothing to push: every waiter hears why instead of timing out.
            failure = err instanceof Error ? err : new Error(String(err));
            for (const w of waiters.splice(0)) w.reject(failure);
          },
        );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    messages,
    envelopes,
    refused,
    waitFor(count) {
      if (messages.length >= count) return Promise.resolve();
      if (failure) return Promise.reject(failure);
      return new Promise<void>((resolve, reject) => {
        const waiter = {
          count,
          resolve: () => (clearTimeout(timer), resolve()),
          reject: (err: Error) => (clearTimeout(timer), reject(err)),
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`fake SMTP: ${messages.length} of ${count} messages arrived`));
        }, 10_000);
        waiters.push(waiter);
      });
    },
    reject(code) {
      nextCode = code;
    },
    connections: () => opened,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
