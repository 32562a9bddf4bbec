import type { ServerResponse } from 'node:http';
import { SECURITY_HEADERS } from '../headers.js';

/** One server-sent event. `data` is already JSON text (serialised once, however many clients get it). */
export interface SseEvent {
  id?: number | string;
  event: string;
  data: string;
}

export interface SseLimits {
  /** Events written but not yet handed to the socket; beyond this the connection is ended. */
  maxQueuedEvents: number;
  /** Bytes written but not yet handed to the socket; beyond this the connection is ended. */
  maxQueuedBytes: number;
  /** A `: ping` comment this often keeps proxies from timing the response out. */
  pingMs: number;
  /** How often the stream's key or session is checked again (api/routes/live.ts); a failed check ends it. */
  recheckMs: number;
}

/** How long a connection may have no room before it is ended (see hasRoom). */
const STALL_MS = 30_000;

export const DEFAULT_SSE_LIMITS: SseLimits = { maxQueuedEvents: 1_000, maxQueuedBytes: 1024 * 1024, pingMs: 15_000, recheckMs: 30_000 };

export type CloseReason = 'client' | 'overflow' | 'done' | 'server';

/**
 * One text/event-stream response. Writes never wait: an event goes into the
 * response's buffer at once, so a slow client can never hold up the hub (nor,
 * behind it, a database transaction or a worker). The buffer is bounded: a
 * client that falls behind by more than `maxQueuedEvents` events or
 * `maxQueuedBytes` bytes is disconnected, and its EventSource reconnects
 * with Last-Event-ID and resumes from there.
 */
export class SseConnection {
  private queuedEvents = 0;
  private closed = false;
  private readonly ping: NodeJS.Timeout;
  private readonly closeListeners: ((reason: CloseReason) => void)[] = [];
  private reason: CloseReason = 'client';
  /** Since when hasRoom() has said no (null: it has room). */
  private stalledSince: number | null = null;

  constructor(
    private readonly res: ServerResponse,
    private readonly limits: SseLimits,
  ) {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    // Tells EventSource how long to wait before reconnecting, and gets the headers out now.
    res.write('retry: 2000\n\n');
    this.ping = setInterval(() => this.write(': ping\n\n'), limits.pingMs);
    this.ping.unref();
    res.on('close', () => this.closedNow());
    // Gone while the route's checks ran: 'close' already fired, and would never fire again.
    if (res.destroyed || res.socket?.destroyed) this.closedNow();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queue one event; false when the connection is closed (or was just closed for overflowing). */
  send(e: SseEvent): boolean {
    let text = '';
    if (e.id !== undefined) text += `id: ${e.id}\n`;
    text += `event: ${e.event}\n`;
    // JSON text has no raw newlines, so one data line suffices.
    text += `data: ${e.data}\n\n`;
    return this.write(text);
  }

  /**
   * Whether more may be sent now without coming near the limits: under half
   * the events and bytes allowed are still queued. A sender with more to say
   * waits for a later turn instead of overflowing a client that keeps up.
   */
  hasRoom(): boolean {
    if (this.closed) return false;
    if (this.queuedEvents < this.limits.maxQueuedEvents / 2 && this.res.writableLength < this.limits.maxQueuedBytes / 2) {
      this.stalledSince = null;
      return true;
    }
    // A client that reads nothing for STALL_MS is let go, as one that overflows is: a sender that
    // waits for room must not wait (and read the database again each turn) forever.
    const now = Date.now();
    if (this.stalledSince === null) this.stalledSince = now;
    else if (now - this.stalledSince > STALL_MS) {
      this.reason = 'overflow';
      this.res.destroy();
      this.closedNow();
    }
    return false;
  }

  /** Called once, when the connection ends for any reason. */
  onClose(listener: (reason: CloseReason) => void): void {
    if (this.closed) listener(this.reason);
    else this.closeListeners.push(listener);
  }

  /** End the response after what was queued ('done': the stream is complete; 'server': shutting down). */
  end(reason: 'done' | 'server'): void {
    if (this.closed) return;
    this.reason = reason;
    this.res.end();
    this.closedNow();
  }

  private write(text: string): boolean {
    if (this.closed) return false;
    // Characters stand in for bytes (close enough for a limit). An event alone larger than the limit
    // still goes out when nothing is queued, or a client could never get past it.
    const queued = this.res.writableLength;
    if (this.queuedEvents >= this.limits.maxQueuedEvents || (queued > 0 && queued + text.length > this.limits.maxQueuedBytes)) {
      this.reason = 'overflow';
      // Drop what is buffered: the client reconnects and reads from its last id.
      this.res.destroy();
      this.closedNow();
      return false;
    }
    this.queuedEvents++;
    this.res.write(text, () => {
      this.queuedEvents--;
    });
    return true;
  }

  private closedNow(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ping);
    for (const l of this.closeListeners.splice(0)) l(this.reason);
  }
}
