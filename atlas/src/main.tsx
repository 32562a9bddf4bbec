import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import './styles.css';
import { api, ApiError, SIGNED_OUT_BY_USER, SIGNED_OUT_EVENT } from './api.js';
import { ErrorBox } from './components/error-box.js';
import { Layout } from './components/layout.js';
import { Loading } from './components/loading.js';
import { AnalyticsPage } from './pages/analytics/index.js';
import { InspectorPage } from './pages/inspector/index.js';
import { RunsPage } from './pages/runs/index.js';
import { SettingsPage } from './pages/settings/index.js';
import { InvitePage, SignInPage } from './pages/sign-in.js';
import { WorkflowPage, WorkflowsPage } from './pages/workflows/index.js';
import { matchPath, navigate, useLocation, type Location } from './router.js';
import { SessionContext, type SessionInfo } from './session.js';

/** Where a signed-in user lands, and where sign-in returns to (only our own paths). */
function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/')) return '/runs';
  try {
    // Resolved the way the browser would: `//host`, `/\host` and the like land elsewhere and are refused.
    const url = new URL(next, window.location.origin);
    if (url.origin !== window.location.origin || url.pathname.startsWith('/sign-in')) return '/runs';
    return url.pathname + url.search + url.hash;
  } catch {
    return '/runs';
  }
}

function Page(props: { loc: Location }) {
  const { path } = props.loc;
  let m: Record<string, string> | null;
  // Keyed by id: another run or workflow is a fresh page (no state, PHI reveal or data carried over).
  if ((m = matchPath('/runs/:id', path))) return <InspectorPage key={m.id} jobId={m.id!} loc={props.loc} />;
  if (matchPath('/runs', path)) return <RunsPage loc={props.loc} />;
  if ((m = matchPath('/workflows/:id', path))) return <WorkflowPage key={m.id} workflowId={m.id!} loc={props.loc} />;
  if (matchPath('/workflows', path)) return <WorkflowsPage loc={props.loc} />;
  if (matchPath('/analytics', path)) return <AnalyticsPage loc={props.loc} />;
  if (matchPath('/settings', path) || matchPath('/settings/:tab', path)) return <SettingsPage loc={props.loc} />;
  return (
    <div>
      <h1>Page not found</h1>
      <p>
        There is nothing at <code>{path}</code>.
      </p>
    </div>
  );
}

function App() {
  const loc = useLocation();
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      setSession(await api<SessionInfo>('/v1/sessions/current'));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setSession(null);
      else setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err)));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  // The server ended the session (expired, revoked, user removed): back to sign-in, then back here.
  useEffect(() => {
    const onSignedOut = (e: Event) => {
      setSession(null);
      if ((e as CustomEvent).detail === SIGNED_OUT_BY_USER) {
        navigate('/sign-in');
        return;
      }
      const here = window.location.pathname + window.location.search;
      if (!here.startsWith('/sign-in')) navigate(`/sign-in?expired=1&next=${encodeURIComponent(here)}`, { replace: true });
    };
    window.addEventListener(SIGNED_OUT_EVENT, onSignedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, onSignedOut);
  }, []);

  const invite = matchPath('/invite/:token', loc.path);
  if (invite) return <InvitePage token={invite.token!} onSignedIn={(s) => (setSession(s), navigate('/runs'))} />;
  if (error) return <ErrorBox error={error} what="your session" onRetry={load} />;
  if (session === undefined) return <Loading />;
  if (session === null || loc.path === '/sign-in') {
    if (session === null && loc.path !== '/sign-in') {
      navigate(`/sign-in?next=${encodeURIComponent(loc.path + window.location.search)}`, { replace: true });
      return <Loading />;
    }
    if (session && loc.path === '/sign-in') {
      navigate(safeNext(loc.query.get('next')), { replace: true });
      return <Loading />;
    }
    return <SignInPage expired={loc.query.has('expired')} onSignedIn={(s) => (setSession(s), navigate(safeNext(loc.query.get('next')), { replace: true }))} />;
  }
  if (loc.path === '/') {
    navigate('/runs', { replace: true });
    return <Loading />;
  }
  return (
    <SessionContext.Provider value={session}>
      <Layout path={loc.path}>
        <Page loc={loc} />
      </Layout>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
