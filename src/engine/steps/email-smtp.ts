import type { SMTPSentMessageInfo, SMTPTransportOptions, Transporter } from 'nodemailer';
import { EgressUnreachableError } from '../../net/errors.js';
import type { Outbound } from '../../net/outbound.js';
import { truncate } from '../../util/json.js';
import { StepError } from './types.js';

/** What an `smtp` credential holds: `{ host, port, secure?, user?, password?, from }`. */
export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. Default: port is 465. */
  secure: boolean;
  user: string | undefined;
  password: string | undefined;
  from: string;
}

function bad(field: string, message: string): StepError {
  return new StepError('EMAIL_CREDENTIAL_INVALID', `credential field ${field} ${message}`, { field });
}

/** Reads an `smtp` credential's secret; EMAIL_CREDENTIAL_INVALID names the field that is missing or wrong. */
export function smtpSettings(credential: string, provider: string, secret: Readonly<Record<string, unknown>>): SmtpSettings {
  if (provider !== 'smtp') {
    throw new StepError('EMAIL_CREDENTIAL_INVALID', `credential "${credential}" is a ${truncate(provider, 100)} credential; an email step needs provider smtp`, {
      field: 'provider',
    });
  }
  const host = secret.host;
  if (typeof host !== 'string' || host.trim() === '') throw bad('host', 'must be a host name');
  // Secret fields may be numbers or strings ("587"): accept both.
  const port = typeof secret.port === 'string' && /^\d{1,5}$/.test(secret.port) ? Number(secret.port) : secret.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) throw bad('port', 'must be an integer from 1 to 65535');
  const secure = secret.secure === undefined ? port === 465 : secret.secure === true || secret.secure === 'true';
  const from = secret.from;
  if (typeof from !== 'string' || from.trim() === '') throw bad('from', 'must be the sender address');
  const text = (field: string): string | undefined => {
    const v = secret[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw bad(field, 'must be text');
    return String(v);
  };
  const user = text('user');
  const password = text('password');
  if (password !== undefined && user === undefined) throw bad('user', 'is required with a password');
  return { host: host.trim(), port, secure, user, password, from };
}

/**
 * The Message-ID of the email a step sends: from the job and the step's
 * path, never the attempt, so every send of the same step of the same job —
 * a retry, or a resend after a worker died between the server's answer and
 * the commit of the step's outcome — carries the same Message-ID, and a
 * receiver or archive that deduplicates on it keeps one copy. Paths are
 * `[A-Za-z0-9_]` ids joined by `.` with `[n]` loop indexes; `[n]` becomes
 * `-n` (ids never hold `-`), which keeps the local part a valid dot-atom.
 */
export function emailMessageId(jobId: string, stepPath: string, senderAddress: string): string {
  const tag = stepPath.replace(/\[(\d+)\]/g, '-$1').replace(/[^A-Za-z0-9_.-]/g, '_');
  const domain = senderAddress.slice(senderAddress.lastIndexOf('@') + 1) || 'stepwise.invalid';
  return `<${jobId}.${tag}@${domain}>`;
}

// nodemailer's defaults wait 2 min for a connection and 10 min of silence. A
// connection that has not opened in 15 s will not (the attempt's own timer,
// 30 s by default, would end it as a bare STEP_TIMEOUT); failing first says
// EMAIL_CONNECTION, which a retry policy can name.
const CONNECTION_TIMEOUT_MS = 15_000;
const GREETING_TIMEOUT_MS = 15_000;
const SOCKET_TIMEOUT_MS = 60_000;

/**
 * A transport for one send, closed by the caller. Never reads files or URLs: every attachment is handed in as bytes.
 * nodemailer is loaded with the first send, not with the step registry: every CLI command and worker imports the
 * registry, and most never send mail (nodemailer takes ~0.2 s to load here).
 *
 * The connection comes from `net` (the step's egress policy): the SMTP host is a tenant's choice like any URL,
 * so it is resolved and checked once and connected to as the checked address. nodemailer then speaks SMTP over
 * that socket, TLS included (implicit on 465, STARTTLS otherwise), checking the certificate against the host name.
 */
export async function smtpTransport(settings: SmtpSettings, net: Outbound, signal: AbortSignal): Promise<Transporter<SMTPSentMessageInfo, SMTPTransportOptions>> {
  const { default: nodemailer } = await import('nodemailer');
  const options: SMTPTransportOptions = {
    host: settings.host,
    port: settings.port,
    secure: settings.secure,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
    getSocket: (_options, callback) => {
      net.connect(settings.host, settings.port, { timeoutMs: CONNECTION_TIMEOUT_MS, signal }).then(
        (connection) => callback(null, { connection }),
        (err: Error) => callback(err, undefined as never),
      );
    },
  };
  if (settings.user !== undefined) options.auth = { user: settings.user, pass: settings.password ?? '' };
  return nodemailer.createTransport(options);
}

/** What nodemailer's errors carry. */
interface SmtpFailure {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
}

/**
 * A failed send as a step error. The server's reply decides: 5xx is
 * permanent (EMAIL_REJECTED; a failed login EMAIL_AUTH), 4xx transient
 * (EMAIL_DEFERRED, worth a retry); no reply at all — refused, timed out,
 * dropped, TLS failed — is EMAIL_CONNECTION (worth a retry).
 */
export function smtpStepError(err: unknown, where: string): StepError {
  const e = (err ?? {}) as SmtpFailure;
  const smtpCode = typeof e.responseCode === 'number' ? e.responseCode : null;
  const response = e.response ? truncate(e.response, 500) : undefined;
  const data: Record<string, unknown> = { smtpCode, ...(response ? { response } : {}), ...(e.command ? { command: e.command } : {}) };
  // The connection is ours (egress): its failure names host and port already, which `where` says too.
  const reason = err instanceof EgressUnreachableError ? `connect ${err.systemCode ?? 'failed'}` : truncate(e.message ?? String(err), 500);
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH') {
    return new StepError('EMAIL_AUTH', `${where} refused the login: ${reason}`, data);
  }
  if (smtpCode !== null && smtpCode >= 500) return new StepError('EMAIL_REJECTED', `${where} rejected the message: ${reason}`, data);
  if (smtpCode !== null && smtpCode >= 400) return new StepError('EMAIL_DEFERRED', `${where} deferred the message: ${reason}`, data);
  return new StepError('EMAIL_CONNECTION', `${where} could not be reached: ${reason}`, { ...data, cause: e.code ?? null });
}
