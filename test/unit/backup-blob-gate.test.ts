import { describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/blob/index.js';
import { BlobDeletionGate } from '../../src/lifecycle/backup/blob-gate.js';

/** A store whose deletes finish only when the test says so; everything else is never called. */
function heldStore(): { store: BlobStore; deleting: string[]; finish: () => void } {
  const deleting: string[] = [];
  let waiters: Array<() => void> = [];
  const store = {
    kind: 'held',
    delete: async (key: string) => {
      deleting.push(key);
      await new Promise<void>((r) => waiters.push(r));
      return true;
    },
  } as unknown as BlobStore;
  return {
    store,
    deleting,
    finish: () => {
      const w = waiters;
      waiters = [];
      w.forEach((r) => r());
    },
  };
}

const settled = async <T>(p: Promise<T>): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  // Two turns of the microtask queue and one of the event loop: enough for an unblocked promise to settle.
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('BlobDeletionGate', () => {
  it('a backup waits for deletions in flight; deletions wait while it holds the gate', async () => {
    const gate = new BlobDeletionGate();
    const { store, deleting, finish } = heldStore();
    const guarded = gate.guard(store);
    const first = guarded.delete('a');
    expect(deleting).toEqual(['a']);
    const held = gate.hold();
    expect(await settled(held)).toBe(false);
    expect(gate.holdersWaiting).toBe(1);
    finish();
    const release = await held;
    expect(await first).toBe(true);
    expect(gate.isHeld).toBe(true);
    const second = guarded.delete('b');
    expect(await settled(second)).toBe(false);
    expect(deleting).toEqual(['a']);
    release();
    await new Promise((r) => setImmediate(r));
    expect(deleting).toEqual(['a', 'b']);
    finish();
    expect(await second).toBe(true);
    expect(gate.isHeld).toBe(false);
  });

  it('an aborted wait releases the gate at once', async () => {
    const gate = new BlobDeletionGate();
    const { store, deleting, finish } = heldStore();
    const guarded = gate.guard(store);
    const first = guarded.delete('a');
    const abort = new AbortController();
    const held = gate.hold(abort.signal);
    abort.abort(new Error('client gone'));
    await expect(held).rejects.toThrow('client gone');
    expect(gate.isHeld).toBe(false);
    const second = guarded.delete('b');
    await new Promise((r) => setImmediate(r));
    expect(deleting).toEqual(['a', 'b']);
    finish();
    await Promise.all([first, second]);
  });

  it('passes every other call straight through', async () => {
    const gate = new BlobDeletionGate();
    const calls: string[] = [];
    const store = new Proxy({} as BlobStore, {
      get: (_t, prop) => (prop === 'kind' ? 'fs' : async (...args: unknown[]) => calls.push(`${String(prop)}:${args.join(',')}`)),
    });
    const guarded = gate.guard(store);
    const release = await gate.hold();
    await guarded.put('k', 'v');
    await guarded.get('k');
    await guarded.exists('k');
    await guarded.list('p/');
    release();
    expect(calls).toEqual(['put:k,v,', 'get:k', 'exists:k', 'list:p/']);
    expect(guarded.kind).toBe('fs');
  });
});
