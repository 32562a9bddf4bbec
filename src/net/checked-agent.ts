import { Agent, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { connectChecked, type CheckedTarget } from './egress.js';

/** A free connection is closed after this long unused (servers commonly close theirs after 5–60 s). */
const IDLE_MS = 15_000;
/** Free connections kept per address, port and TLS name. */
const MAX_FREE_PER_KEY = 16;

/** What a request hands the agent besides node's own options. */
export interface CheckedRequestOptions {
  checked: CheckedTarget;
  /** TLS options (https): the handshake is made on the connection the policy admitted. */
  checkedTls: ConnectionOptions | undefined;
  checkedTimeoutMs: number | undefined;
  /** node takes `signal` out of the options before they reach an agent; this one goes to the connect. */
  checkedSignal: AbortSignal | undefined;
}

/**
 * Keep-alive for outbound HTTP, as fetch had it: without it every http
 * step to a remote HTTPS API pays a new TCP and TLS handshake. Pooling
 * stays inside the policy because a connection is only ever made by
 * `connectChecked`, and a request finds a pooled one only under its key —
 * the address its host was just resolved to and checked as, the port and
 * the TLS name — so a request reuses a connection only after its own check
 * came out at that very address.
 */
export class CheckedAgent extends Agent {
  constructor() {
    super({ keepAlive: true, maxFreeSockets: MAX_FREE_PER_KEY, timeout: IDLE_MS, scheduling: 'lifo' });
  }

  override getName(options?: ClientRequestArgs): string {
    const { checked, checkedTls } = options as unknown as CheckedRequestOptions;
    const address = checked.addresses[0]!.address;
    return `${address}|${checked.port}|${checkedTls ? `tls:${checked.servername ?? address}` : 'plain'}`;
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex {
    const { checked, checkedTls, checkedTimeoutMs, checkedSignal } = options as unknown as CheckedRequestOptions;
    connectChecked(checked, {
      ...(checkedTls ? { tls: checkedTls } : {}),
      ...(checkedSignal ? { signal: checkedSignal } : {}),
      ...(checkedTimeoutMs ? { timeoutMs: checkedTimeoutMs } : {}),
    }).then(
      (socket) => callback!(null, socket),
      (err: Error) => callback!(err, undefined as never),
    );
    // Answered through the callback: node's Agent waits for it when nothing is returned.
    return undefined as never;
  }
}
