import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { EgressPolicy, type EgressAllowEntry } from './address-policy.js';
import { connectChecked, resolveEgress, type CheckedTarget, type ConnectOptions, type EgressLookup } from './egress.js';
import { CheckedAgent } from './checked-agent.js';
import { outboundRequest, type OutboundRequest, type OutboundResponse } from './http-client.js';

/**
 * The one way a step reaches the network. Every step type that connects
 * anywhere (http, llm, email, sql, and whatever is added later) takes its
 * connections from here, so one policy — public addresses, plus what
 * STEPWISE_EGRESS_ALLOW names — decides for all of them, and the name is
 * resolved once, checked, and connected to as the address that was checked.
 * Browser contexts reach the network through the egress proxy
 * (src/browser/egress-proxy.ts), which holds the same policy.
 */
export class Outbound {
  readonly policy: EgressPolicy;
  private readonly lookup: EgressLookup | undefined;
  /** Keep-alive connections of `request`, each to an address the policy checked. */
  private readonly agent = new CheckedAgent();

  /**
   * `allow`: an EgressPolicy, STEPWISE_EGRESS_ALLOW's text, or its parsed
   * entries. `lookup`: the resolver (default the system's; tests pass a
   * table to make a name resolve to 127.0.0.1).
   */
  constructor(allow: EgressPolicy | string | readonly EgressAllowEntry[] = [], lookup?: EgressLookup) {
    this.policy = allow instanceof EgressPolicy ? allow : new EgressPolicy(allow);
    this.lookup = lookup;
  }

  /**
   * Resolve `host` once and check each address; for drivers that open their
   * own socket (PostgreSQL, MySQL), which are then given an address of the
   * target, never the name.
   *
   * @throws EgressDeniedError, EgressUnreachableError
   */
  resolve(host: string, port: number): Promise<CheckedTarget> {
    return resolveEgress(host, port, { policy: this.policy, ...(this.lookup ? { lookup: this.lookup } : {}) });
  }

  /** A TCP (or TLS) connection to `host`:`port` that the policy admitted. */
  async connect(host: string, port: number, options: ConnectOptions = {}): Promise<Socket | TLSSocket> {
    return connectChecked(await this.resolve(host, port), options);
  }

  /** An HTTP(S) request; each redirect is resolved and checked again before it is followed. */
  request(request: OutboundRequest): Promise<OutboundResponse> {
    return outboundRequest(request, (host, port) => this.resolve(host, port), this.agent);
  }

  /** Close the idle keep-alive connections (a worker stopping). */
  close(): void {
    this.agent.destroy();
  }
}
