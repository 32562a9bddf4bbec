import { useEffect, useState } from 'preact/hooks';

/**
 * Times are shown in UTC or the browser's zone, one toggle for the whole
 * dashboard, remembered in localStorage. UTC is the default: an operations
 * team comparing a run with a log line elsewhere wants one clock.
 */
export type Zone = 'utc' | 'local';

const KEY = 'atlas.zone';
const CHANGE = 'atlas:zone';

export function getZone(): Zone {
  try {
    return window.localStorage.getItem(KEY) === 'local' ? 'local' : 'utc';
  } catch {
    return 'utc';
  }
}

export function setZone(zone: Zone): void {
  try {
    window.localStorage.setItem(KEY, zone);
  } catch {
    // private mode: the toggle still works for this page
  }
  window.dispatchEvent(new Event(CHANGE));
}

/** The current zone; re-renders when it is toggled anywhere. */
export function useZone(): Zone {
  const [zone, set] = useState(getZone);
  useEffect(() => {
    const update = () => set(getZone());
    window.addEventListener(CHANGE, update);
    return () => window.removeEventListener(CHANGE, update);
  }, []);
  return zone;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `2026-12-06 14:03:07` (+ `.123` with ms) in the chosen zone, with a `Z` in UTC. */
export function formatTime(value: string | Date | null | undefined, zone: Zone, opts: { ms?: boolean } = {}): string {
  if (value === null || value === undefined) return '—';
  const d = typeof value === 'string' ? new Date(value) : value;
  if (Number.isNaN(d.getTime())) return '—';
  const utc = zone === 'utc';
  const y = utc ? d.getUTCFullYear() : d.getFullYear();
  const mo = (utc ? d.getUTCMonth() : d.getMonth()) + 1;
  const day = utc ? d.getUTCDate() : d.getDate();
  const h = utc ? d.getUTCHours() : d.getHours();
  const mi = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  const ms = utc ? d.getUTCMilliseconds() : d.getMilliseconds();
  return `${y}-${pad(mo)}-${pad(day)} ${pad(h)}:${pad(mi)}:${pad(s)}${opts.ms ? `.${pad(ms, 3)}` : ''}${utc ? 'Z' : ''}`;
}

/** 850 ms, 12.4 s, 3 m 05 s, 2 h 10 m. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${pad(Math.floor((ms % 60_000) / 1000))} s`;
  return `${Math.floor(ms / 3_600_000)} h ${pad(Math.floor((ms % 3_600_000) / 60_000))} m`;
}
