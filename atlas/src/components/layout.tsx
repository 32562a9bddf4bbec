import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api, ApiError, SIGNED_OUT_BY_USER, SIGNED_OUT_EVENT } from '../api.js';
import { useSession } from '../session.js';
import { setZone, useZone } from '../time.js';
import { Link } from './link.js';

const SECTIONS = [
  { href: '/runs', label: 'Runs' },
  { href: '/workflows', label: 'Workflows' },
  { href: '/analytics', label: 'Analytics' },
  { href: '/settings', label: 'Settings' },
] as const;

/** The frame of every signed-in page: navigation, organization, user, clock toggle, sign-out. */
export function Layout(props: { path: string; children: ComponentChildren }) {
  const session = useSession();
  const zone = useZone();
  const [signOutError, setSignOutError] = useState<string | null>(null);
  const signOut = async () => {
    setSignOutError(null);
    try {
      await api('/v1/sessions/current', { method: 'DELETE' });
    } catch (err) {
      // Still signed in on the server: say so rather than pretend.
      setSignOutError(err instanceof ApiError ? err.message : String(err));
      return;
    }
    window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT, { detail: SIGNED_OUT_BY_USER }));
  };
  return (
    <div class="shell">
      <header class="topbar">
        <Link href="/runs" class="brand">
          Stepwise <span>Atlas</span>
        </Link>
        <nav aria-label="Main">
          {SECTIONS.map((s) => (
            <Link key={s.href} href={s.href} aria-current={props.path.startsWith(s.href) ? 'page' : undefined}>
              {s.label}
            </Link>
          ))}
        </nav>
        <div class="topbar-end">
          <button
            type="button"
            class="ghost"
            aria-label={`Times shown in ${zone === 'utc' ? 'UTC' : 'local time'}; switch`}
            onClick={() => setZone(zone === 'utc' ? 'local' : 'utc')}
          >
            {zone === 'utc' ? 'UTC' : 'Local'}
          </button>
          <span class="who" title={session.user.email}>
            {session.user.name ?? session.user.email} · {session.organization.name} · {session.role}
          </span>
          <button type="button" class="ghost" onClick={signOut}>
            Sign out
          </button>
          {signOutError && (
            <span class="small" role="alert">
              Sign-out failed: {signOutError}
            </span>
          )}
        </div>
      </header>
      <main class="page">{props.children}</main>
    </div>
  );
}
