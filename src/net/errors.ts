import type { RefusedClass } from './address-policy.js';

/**
 * Errors of outbound connections made for tenants. They are not
 * StepwiseErrors: they end a step (its code goes into the step's failure),
 * not an API request, so they stay out of the API's error-code switch.
 *
 * Their messages name the host the tenant asked for and why, never the
 * addresses it resolved to: those would map Stepwise's network for whoever
 * wrote the workflow.
 */

/**
 * Why a connection was refused: the class of an address, a host or port
 * that is not valid, or a rule of the caller's own (a browser step's
 * allowed origins).
 */
export type EgressDenialReason = RefusedClass | 'invalid-host' | 'invalid-port' | 'not-allowed';

function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The egress policy refused a host (code EGRESS_DENIED). `reason` is stable; the message is for people. */
export class EgressDeniedError extends Error {
  readonly code = 'EGRESS_DENIED' as const;
  constructor(
    readonly host: string,
    readonly port: number,
    readonly reason: EgressDenialReason,
    /** Why, in words, e.g. "evil.example resolves to a loopback address". */
    readonly detail: string,
  ) {
    super(`connection to ${hostPort(host, port)} refused: ${detail}`);
    this.name = 'EgressDeniedError';
  }

  /** What a step records with the failure (host, port, reason). */
  get data(): { host: string; port: number; reason: EgressDenialReason } {
    return { host: this.host, port: this.port, reason: this.reason };
  }
}

/**
 * An admitted host could not be reached: its name did not resolve, or no
 * checked address accepted the connection in time (code EGRESS_UNREACHABLE).
 * `cause` keeps the system error for logs; the message names only the host
 * and the error code (e.g. ENOTFOUND, ECONNREFUSED, ETIMEDOUT).
 */
export class EgressUnreachableError extends Error {
  readonly code = 'EGRESS_UNREACHABLE' as const;
  constructor(
    readonly host: string,
    readonly port: number,
    /** ENOTFOUND, ECONNREFUSED, ETIMEDOUT, … or null when unknown. */
    readonly systemCode: string | null,
    options?: { cause?: unknown },
  ) {
    super(`could not connect to ${hostPort(host, port)}${systemCode ? ` (${systemCode})` : ''}`, options);
    this.name = 'EgressUnreachableError';
  }
}

/**
 * An HTTP request through the egress policy that could not be made as asked:
 * a redirect to something that is not an http(s) URL, or more redirects than
 * allowed. Not a refusal by the policy (that is EgressDeniedError).
 */
export class OutboundRequestError extends Error {
  constructor(
    readonly code: 'BAD_URL' | 'BAD_REDIRECT' | 'TOO_MANY_REDIRECTS',
    message: string,
  ) {
    super(message);
    this.name = 'OutboundRequestError';
  }
}
