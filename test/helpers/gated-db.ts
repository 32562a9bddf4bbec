import type { Db } from '../../src/db/index.js';

/**
 * A view of a database whose transactions can be held at a gate, as if the
 * worker using it paused (a long GC, a network partition) just before its
 * next flush. Everything else passes straight through. `onQuery` sees every
 * plain query's text after it completes, so a test can tell how far the
 * worker got.
 */
export interface GatedDb {
  db: Db;
  /** Transactions that start from now on wait at the gate. */
  close(): void;
  /** Let waiting and later transactions through. */
  open(): void;
  /** Transactions waiting at the gate now. */
  readonly waiting: number;
}

export function gatedDb(base: Db, onQuery?: (text: string) => void): GatedDb {
  let gate: Promise<void> | undefined;
  let release: (() => void) | undefined;
  let waiting = 0;
  const transaction: Db['transaction'] = async (fn) => {
    while (gate) {
      waiting++;
      try {
        await gate;
      } finally {
        waiting--;
      }
    }
    return base.transaction(fn);
  };
  const query: Db['query'] = async <R>(text: string, params?: readonly unknown[]) => {
    const result = await base.query<R>(text, params);
    onQuery?.(text);
    return result;
  };
  const db = new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'transaction') return transaction;
      if (prop === 'query') return query;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    db,
    close() {
      if (!gate) gate = new Promise<void>((r) => (release = r));
    },
    open() {
      const r = release;
      gate = undefined;
      release = undefined;
      r?.();
    },
    get waiting() {
      return waiting;
    },
  };
}
