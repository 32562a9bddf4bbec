import { readdir, readFile } from 'node:fs/promises';

/**
 * Memory of a browser's process tree, from Linux's /proc. Chromium is a
 * browser process plus a zygote, GPU/utility and renderer processes; their
 * RSS summed counts shared pages many times, so PSS (each shared page split
 * between its sharers) is used where the kernel gives it. One reading
 * (the whole /proc listing, then the tree's files) took ~50 ms on this
 * shared 2-core machine; the pool reads it at most every 10 s.
 * Elsewhere than Linux every function answers null and the pool restarts
 * browsers by context count only.
 */

interface ProcEntry {
  pid: number;
  ppid: number;
}

async function listProcesses(): Promise<ProcEntry[] | null> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return null;
  }
  const out: ProcEntry[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue; // exited between the listing and the read
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push({ pid: Number(name), ppid: Number(fields[1]) });
  }
  return out;
}

/** The pid of a child of `parentPid` whose command line holds `arg` exactly, or null. */
export async function findChildByArg(parentPid: number, arg: string): Promise<number | null> {
  const processes = await listProcesses();
  if (processes === null) return null;
  for (const { pid, ppid } of processes) {
    if (ppid !== parentPid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(arg)) return pid;
  }
  return null;
}

async function processMemory(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => null);
  const pss = rollup === null ? null : /^Pss:\s+(\d+) kB/m.exec(rollup);
  if (pss) return Number(pss[1]) * 1024;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return rss ? Number(rss[1]) * 1024 : 0;
}

/** Bytes held by `rootPid` and all its descendants (PSS, else RSS), or null where /proc is not readable. */
export async function processTreeMemory(rootPid: number): Promise<number | null> {
  const processes = await listProcesses();
  if (processes === null || !processes.some((p) => p.pid === rootPid)) return null;
  const children = new Map<number, number[]>();
  for (const { pid, ppid } of processes) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  let total = 0;
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    total += await processMemory(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return total;
}
