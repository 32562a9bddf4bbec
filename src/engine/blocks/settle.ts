/**
 * Wait for every promise, then throw the first rejection. Unlike
 * Promise.all, nothing is left running when a sibling throws (an abort
 * reason reaches every branch; a bug in one must not leave the others
 * writing after the block returned).
 */
export async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
