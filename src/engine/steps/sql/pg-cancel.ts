import type pg from 'pg';
import type { CheckedTarget } from '../../../net/egress.js';
import { checkedCancelSocket } from './checked-socket.js';

/** The CancelRequest code of PostgreSQL's wire protocol (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/**
 * Ask the server to cancel the statement running on `client`'s backend:
 * PostgreSQL's CancelRequest, on a connection of its own, with the backend's
 * process id and secret key (no login). Without it, a step aborted mid-query
 * (cancelled job, lease lost) would leave the statement running on the
 * tenant's database until its statement_timeout, since a backend busy in a
 * statement does not notice its client went away. Best effort: errors are
 * ignored, the socket closes itself.
 */
export function cancelBackend(client: pg.Client, target: CheckedTarget): void {
  const keys = client as unknown as { processID: number | null; secretKey: number | null };
  if (keys.processID === null || keys.secretKey === null) return;
  const message = Buffer.alloc(16);
  message.writeInt32BE(16, 0);
  message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  message.writeInt32BE(keys.processID, 8);
  message.writeInt32BE(keys.secretKey, 12);
  // To the address the connection itself went to (the egress policy checked it), never the name resolved again.
  const socket = checkedCancelSocket(target);
  socket.setTimeout(5_000, () => socket.destroy());
  socket.on('error', () => undefined);
  socket.on('connect', () => socket.end(message));
}
