import pg from 'pg';
import { DatabaseError } from '../errors/index.js';
import { metrics } from '../metrics/index.js';
import type { Logger } from '../util/logger.js';
import { RECONNECT_BACKOFF, reconnectDelayMs } from './backoff.js';
import { mapConnectError, mapDbError } from './errors.js';

/**
 * TCP keepalive probes start after this much idle time. A LISTEN connection
 * is idle between notifications, and without probes a connection silently
 * cut by a NAT or firewall would look alive until the next write, which a
 * listener never makes.
 */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

export interface NotificationListenerOptions {
  connectionString: string;
  /** application_name of the connection, to find it in pg_stat_activity. */
  applicationName: string;
  logger: Logger;
  /**
   * A connection attempt that has not completed within this long is given up
   * and retried with the backoff (default: the OS's own ~2 min for a host
   * that drops packets, during which nothing is LISTENed).
   */
  connectTimeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Jitter source (tests pass a fixed one). */
  random?: () => number;
}

interface Subscriber {
  onNotify: (payload: string) => void;
  onReconnect: (() => void) | undefined;
}

/**
 * One LISTEN connection shared by every subscription of a process. Each
 * channel is LISTENed once, whatever its number of subscribers, and
 * UNLISTENed when its last subscriber leaves. After any error or end of the
 * connection it reconnects with exponential backoff and full jitter, LISTENs
 * every channel again, and then calls each subscriber's `onReconnect`, so
 * callers poll for what was notified while it was down. Every drop and every
 * reconnection is logged.
 */
export class NotificationListener {
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  /** Channels LISTENed on the current connection. */
  private readonly listening = new Set<string>();
  private client: pg.Client | undefined;
  private firstConnect: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** When the connection dropped; undefined while it is up (or before the first connect). */
  private downSince: number | undefined;
  private attempts = 0;
  private closed = false;
  /** LISTEN and UNLISTEN run one at a time, so each sees the outcome of the one before. */
  private ops: Promise<unknown> = Promise.resolve();
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly random: () => number;

  constructor(private readonly options: NotificationListenerOptions) {
    this.backoff = options.backoff ?? RECONNECT_BACKOFF;
    this.random = options.random ?? Math.random;
  }

  /**
   * Deliver NOTIFYs on `channel` to `onNotify` until the returned function is
   * called. The first subscription opens the connection and fails if it
   * cannot; one made while the connection is down resolves at once and is
   * LISTENed (and its `onReconnect` called) when the connection is back.
   */
  async subscribe(channel: string, onNotify: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>> {
    if (this.closed) throw new DatabaseError('the database connection is closed; cannot LISTEN');
    const subscriber: Subscriber = { onNotify, onReconnect };
    let set = this.subscribers.get(channel);
    if (!set) this.subscribers.set(channel, (set = new Set()));
    set.add(subscriber);
    try {
      await this.connectFirst();
      await this.sync(channel);
    } catch (err) {
      // A LISTEN cut short by a drop is re-issued on reconnection; anything else is the caller's to see.
      if (this.downSince === undefined || this.closed) {
        this.remove(channel, subscriber);
        throw mapDbError(err);
      }
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      this.remove(channel, subscriber);
      // A failed UNLISTEN means the connection dropped, and a new one only LISTENs subscribed channels.
      await this.sync(channel).catch(() => undefined);
    };
  }

  /** End the connection and stop reconnecting. Subscriptions end with it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const client = this.client;
    this.client = undefined;
    this.subscribers.clear();
    await this.firstConnect?.catch(() => undefined);
    await client?.end().catch(() => undefined);
  }

  private remove(channel: string, subscriber: Subscriber): void {
    const set = this.subscribers.get(channel);
    set?.delete(subscriber);
    if (set?.size === 0) this.subscribers.delete(channel);
  }

  /** Open the connection for the first subscriber; later drops are handled by `reconnect`. */
  private connectFirst(): Promise<void> {
    if (this.client || this.downSince !== undefined) return Promise.resolve();
    this.firstConnect ??= this.open()
      .then(async (client) => {
        if (this.closed) {
          await client.end().catch(() => undefined);
          throw new DatabaseError('the database connection is closed; cannot LISTEN');
        }
        this.client = client;
        this.listening.clear();
      })
      .finally(() => {
        this.firstConnect = undefined;
      });
    return this.firstConnect;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: this.options.applicationName,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
      ...(this.options.connectTimeoutMs !== undefined ? { connectionTimeoutMillis: this.options.connectTimeoutMs } : {}),
    });
    client.on('error', (err) => this.dropped(client, err));
    client.on('end', () => this.dropped(client, undefined));
    client.on('notification', (msg) => this.deliver(msg.channel, msg.payload ?? ''));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      // Typed here: the first subscription passes it to its caller (a 503 while the server is down, not a 500).
      throw mapConnectError(err);
    }
    return client;
  }

  /** Make the connection's LISTEN state for `channel` match whether anyone subscribes to it. */
  private sync(channel: string): Promise<void> {
    const run = async (): Promise<void> => {
      const client = this.client;
      if (!client) return;
      const wanted = this.subscribers.has(channel);
      const listened = this.listening.has(channel);
      if (wanted === listened) return;
      await client.query(`${wanted ? 'LISTEN' : 'UNLISTEN'} ${pg.escapeIdentifier(channel)}`);
      if (this.client !== client) return;
      if (wanted) this.listening.add(channel);
      else this.listening.delete(channel);
    };
    const next = this.ops.then(run, run);
    this.ops = next.catch(() => undefined);
    return next;
  }

  private deliver(channel: string, payload: string): void {
    for (const s of [...(this.subscribers.get(channel) ?? [])]) {
      try {
        s.onNotify(payload);
      } catch (err) {
        this.options.logger.error({ err, channel }, 'a NOTIFY handler threw');
      }
    }
  }

  /** The connection errored or ended: forget it and start reconnecting (once per connection). */
  private dropped(client: pg.Client, err: Error | undefined): void {
    if (client !== this.client) return; // one being opened, replaced or closed on purpose
    this.client = undefined;
    this.listening.clear();
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.downSince ??= Date.now();
    this.options.logger.warn(
      { err: err ?? new Error('connection ended'), applicationName: this.options.applicationName, channels: [...this.subscribers.keys()] },
      'LISTEN connection lost; reconnecting (notifications sent meanwhile are picked up by polling)',
    );
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = reconnectDelayMs(this.attempts, this.backoff, this.random);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnect();
    }, delay);
    // Pending reconnection alone must not keep a process from exiting.
    this.reconnectTimer.unref();
  }

  private async reconnect(): Promise<void> {
    if (this.closed) return;
    this.attempts++;
    let client: pg.Client;
    try {
      client = await this.open();
    } catch (err) {
      if (this.closed) return;
      this.options.logger.warn(
        { err, attempt: this.attempts, downMs: this.downMs(), applicationName: this.options.applicationName },
        'LISTEN reconnection failed; retrying',
      );
      this.scheduleReconnect();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.listening.clear();
    try {
      for (const channel of [...this.subscribers.keys()]) await this.sync(channel);
    } catch (err) {
      // Dropped again while LISTENing: `dropped` has already scheduled the next attempt.
      if (this.client === client) this.dropped(client, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.client !== client) return;
    this.options.logger.info(
      {
        downMs: this.downMs(),
        attempts: this.attempts,
        applicationName: this.options.applicationName,
        channels: [...this.listening],
      },
      'LISTEN connection restored',
    );
    this.downSince = undefined;
    this.attempts = 0;
    metrics.recordListenerReconnect();
    for (const set of [...this.subscribers.values()]) {
      for (const s of [...set]) {
        try {
          s.onReconnect?.();
        } catch (err) {
          this.options.logger.error({ err }, 'an onReconnect handler threw');
        }
      }
    }
  }

  private downMs(): number {
    return this.downSince === undefined ? 0 : Date.now() - this.downSince;
  }
}
