import { useEffect, useState } from 'preact/hooks';

/**
 * A tiny history router: every page is a real address people can bookmark
 * and share (/runs?status=FAILED, /runs/<id>?seq=42), and all page state that
 * matters lives in that address.
 */

export interface Location {
  path: string;
  query: URLSearchParams;
}

const CHANGE = 'atlas:navigate';

function current(): Location {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

/** Go to `url` (path and query); `replace` rewrites the current history entry (filter edits). */
export function navigate(url: string, opts: { replace?: boolean } = {}): void {
  const target = new URL(url, window.location.origin);
  if (target.origin !== window.location.origin) throw new Error(`not a dashboard address: ${url}`);
  const next = target.pathname + target.search + target.hash;
  if (next === window.location.pathname + window.location.search + window.location.hash) return;
  if (opts.replace) window.history.replaceState(null, '', next);
  else window.history.pushState(null, '', next);
  window.dispatchEvent(new Event(CHANGE));
}

/** The current address; re-renders on navigation (links, back/forward). */
export function useLocation(): Location {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const update = () => setLoc(current());
    window.addEventListener('popstate', update);
    window.addEventListener(CHANGE, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(CHANGE, update);
    };
  }, []);
  return loc;
}

/** Match `/runs/:id` style patterns; returns the named segments or null. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/').filter(Boolean);
  const have = path.split('/').filter(Boolean);
  if (want.length !== have.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const h = have[i]!;
    if (w.startsWith(':')) {
      try {
        params[w.slice(1)] = decodeURIComponent(h);
      } catch {
        return null; // a malformed %-escape: no page matches it
      }
    }
    else if (w !== h) return null;
  }
  return params;
}

/** A click on an in-app link navigates without a reload (modified clicks open tabs as usual). */
export function onLinkClick(e: MouseEvent, href: string): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(href);
}
