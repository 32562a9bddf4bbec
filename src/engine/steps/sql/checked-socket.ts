import net from 'node:net';
import type { CheckedTarget } from '../../../net/egress.js';

/**
 * Sockets for the SQL drivers that reach only the address the egress policy
 * checked. Both drivers would otherwise resolve the host name again when
 * they connect, after our check, which is the window a rebinding name uses
 * to answer the check with a public address and the driver with 127.0.0.1.
 * The name stays the drivers' for TLS: they check the certificate against
 * it. Only the first checked address is tried (what both drivers do with
 * a name's addresses too).
 */

function firstAddress(target: CheckedTarget): { host: string; port: number; family: number } {
  const address = target.addresses[0]!;
  return { host: address.address, port: target.port, family: address.family };
}

/**
 * node-postgres's `stream`: an unconnected socket whose `connect(port, host)`
 * (pg calls it with the connection string's host) goes to the checked
 * address instead.
 */
export function pgCheckedStream(target: CheckedTarget): () => net.Socket {
  const to = firstAddress(target);
  return () => {
    const socket = new net.Socket();
    const connect = socket.connect.bind(socket) as (options: net.TcpSocketConnectOpts) => net.Socket;
    (socket as { connect: unknown }).connect = () => connect(to);
    return socket;
  };
}

/** mysql2's `stream`: a connection to the checked address, opened for each connection the driver makes (the KILL QUERY one too). */
export function mysqlCheckedStream(target: CheckedTarget): () => net.Socket {
  const to = firstAddress(target);
  return () => net.connect(to);
}

/** Where a CancelRequest goes: the checked address, as for the connection whose statement it cancels. */
export function checkedCancelSocket(target: CheckedTarget): net.Socket {
  return net.connect(firstAddress(target));
}
