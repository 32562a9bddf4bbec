import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { useTitle } from '../hooks.js';
import type { SessionInfo } from '../session.js';
import './sign-in.css';

/** The server's password limits (contracts: at least 12, at most 256 characters). */
const MIN_PASSWORD = 12;
const MAX_PASSWORD = 256;

/** Seconds until a 429 lifts, from the error's details (or its Retry-After-like message). */
function waitOf(err: ApiError): number | null {
  const s = err.details.retryAfterSeconds;
  return typeof s === 'number' && Number.isFinite(s) && s > 0 ? Math.ceil(s) : null;
}

/** A failed sign-in as one plain sentence for the form. */
function messageOf(err: ApiError, via: 'password' | 'apiKey'): string {
  if (err.status === 401) return via === 'password' ? 'That email and password do not match an account.' : 'That API key is not valid, or it no longer belongs to a user.';
  if (err.status === 429) return 'Too many sign-in attempts.';
  return err.message;
}

/** A countdown of the seconds a rate limit still holds; 0 when it has lifted. */
function useCountdown(): [number, (s: number) => void] {
  const [until, setUntil] = useState(0);
  const [, tick] = useState(0);
  useEffect(() => {
    if (until <= Date.now()) return;
    const t = window.setInterval(() => {
      tick((n) => n + 1);
      if (until <= Date.now()) window.clearInterval(t);
    }, 1000);
    return () => window.clearInterval(t);
  }, [until]);
  return [Math.max(0, Math.ceil((until - Date.now()) / 1000)), (s) => setUntil(Date.now() + s * 1000)];
}

function FormError(props: { error: string | null; wait?: number }) {
  if (!props.error) return null;
  return (
    <p class="form-error" role="alert">
      {props.error}
      {props.wait ? ` Try again in ${props.wait} s.` : ''}
    </p>
  );
}

export function SignInPage(props: { expired: boolean; onSignedIn: (s: SessionInfo) => void }) {
  useTitle('Sign in');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [busy, setBusy] = useState<'password' | 'apiKey' | null>(null);
  const [error, setError] = useState<{ via: 'password' | 'apiKey'; text: string } | null>(null);
  const [wait, startWait] = useCountdown();

  const submit = async (via: 'password' | 'apiKey', e: Event) => {
    e.preventDefault();
    if (busy || wait > 0) return;
    setBusy(via);
    setError(null);
    try {
      const body = via === 'password' ? { email: email.trim(), password } : { apiKey: apiKey.trim() };
      const session = await api<SessionInfo>('/v1/sessions', { method: 'POST', body });
      props.onSignedIn(session);
    } catch (err) {
      const e2 = err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err));
      if (e2.status === 429) startWait(waitOf(e2) ?? 30);
      setError({ via, text: messageOf(e2, via) });
      if (via === 'password') setPassword('');
    } finally {
      setBusy(null);
    }
  };

  const blocked = busy !== null || wait > 0;
  return (
    <main class="auth-page">
      <div class="auth-card card">
        <p class="auth-brand">
          Stepwise <span>Atlas</span>
        </p>
        <h1>Sign in</h1>
        {props.expired && (
          <p class="notice" role="status">
            Your session ended; sign in again.
          </p>
        )}
        <form class="auth-form" onSubmit={(e) => submit('password', e)}>
          <label>
            Email
            <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </label>
          <label>
            Password
            <input
              type="password"
              name="password"
              autocomplete="current-password"
              required
              maxLength={MAX_PASSWORD}
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          </label>
          {error?.via === 'password' && <FormError error={error.text} wait={wait} />}
          <button type="submit" class="primary" disabled={blocked}>
            {busy === 'password' ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
        <div class="auth-or" aria-hidden="true">
          <span>or</span>
        </div>
        <form class="auth-form" onSubmit={(e) => submit('apiKey', e)}>
          <label>
            API key
            <input
              type="password"
              name="apiKey"
              autocomplete="off"
              spellcheck={false}
              required
              value={apiKey}
              onInput={(e) => setApiKey(e.currentTarget.value)}
            />
          </label>
          <p class="muted small">A key that belongs to a user signs you in as that user, with that user's role.</p>
          {error?.via === 'apiKey' && <FormError error={error.text} wait={wait} />}
          <button type="submit" disabled={blocked}>
            {busy === 'apiKey' ? 'Signing in…' : 'Sign in with API key'}
          </button>
        </form>
      </div>
    </main>
  );
}

/** /invite/:token — a user invited by an OWNER or ADMIN sets a password and is signed in. */
export function InvitePage(props: { token: string; onSignedIn: (s: SessionInfo) => void }) {
  useTitle('Set your password');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [wait, startWait] = useCountdown();

  const problem =
    password.length > 0 && password.length < MIN_PASSWORD
      ? `The password needs at least ${MIN_PASSWORD} characters (${password.length} so far).`
      : password.length > MAX_PASSWORD
        ? `The password can have at most ${MAX_PASSWORD} characters.`
        : repeat.length > 0 && repeat !== password
          ? 'The two passwords differ.'
          : null;
  const ready = password.length >= MIN_PASSWORD && password.length <= MAX_PASSWORD && repeat === password;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!ready || busy || wait > 0) return;
    setBusy(true);
    setError(null);
    try {
      const session = await api<SessionInfo>('/v1/invitations/accept', { method: 'POST', body: { token: props.token, password } });
      props.onSignedIn(session);
    } catch (err) {
      const e2 = err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err));
      if (e2.status === 429) startWait(waitOf(e2) ?? 30);
      setError(
        e2.status === 404 || e2.status === 410 || e2.status === 401
          ? 'This invitation link is not valid any more (it was used, or it expired). Ask an administrator for a new one.'
          : e2.message,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="auth-page">
      <div class="auth-card card">
        <p class="auth-brand">
          Stepwise <span>Atlas</span>
        </p>
        <h1>Set your password</h1>
        <p class="muted small">You were invited to Stepwise. Choose a password of at least {MIN_PASSWORD} characters; you are signed in once it is set.</p>
        <form class="auth-form" onSubmit={submit}>
          <label>
            New password
            <input type="password" autocomplete="new-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <label>
            Repeat password
            <input type="password" autocomplete="new-password" required value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} />
          </label>
          {problem && (
            <p class="form-hint" aria-live="polite">
              {problem}
            </p>
          )}
          <FormError error={error} wait={wait} />
          <button type="submit" class="primary" disabled={!ready || busy || wait > 0}>
            {busy ? 'Setting…' : 'Set password and sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}
