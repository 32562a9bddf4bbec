import type { ComponentChildren } from 'preact';
import { useId, useRef, useState } from 'preact/hooks';
import { ApiError } from '../../api.js';
import './kit.css';

/**
 * Small pieces the admin pages share (Settings, and the workflow page's
 * webhook and schedule tabs): a mutation with busy/error state, the inline
 * form error with the server's message, a copy button, and the panel that
 * shows a secret exactly once.
 */

export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', (err as Error)?.message ?? String(err));
}

export interface Mutation {
  busy: boolean;
  error: ApiError | null;
  /** Run `fn`; resolves to its result, or undefined when it failed (the error is then in `error`). */
  run: <T>(fn: () => Promise<T>) => Promise<T | undefined>;
  clear: () => void;
}

export function useMutation(): Mutation {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  return {
    busy,
    error,
    clear: () => setError(null),
    run: async (fn) => {
      setBusy(true);
      setError(null);
      try {
        return await fn();
      } catch (err) {
        setError(asApiError(err));
        return undefined;
      } finally {
        setBusy(false);
      }
    },
  };
}

/** A form's error, inline, with the server's message and the field it names. */
export function FormError(props: { error: ApiError | null }) {
  const e = props.error;
  if (!e) return null;
  const path = typeof e.details.path === 'string' ? e.details.path : null;
  return (
    <p class="form-error" role="alert">
      {e.message}
      {path && !e.message.includes(path) ? <> (<code>{path}</code>)</> : null} <code>{e.code}</code>
    </p>
  );
}

/** A form's submit button (named for what it does; its busy text while the request runs) and Cancel. */
export function SubmitOrCancel(props: { label: string; busyLabel: string; busy: boolean; disabled?: boolean; onCancel: () => void }) {
  return (
    <>
      <button type="submit" class="primary" disabled={props.busy || props.disabled === true}>
        {props.busy ? props.busyLabel : props.label}
      </button>
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
    </>
  );
}

async function copyText(text: string, fallback: HTMLInputElement | null): Promise<boolean> {
  try {
    if (navigator.clipboard) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // not allowed here (plain http, no permission): select it instead
  }
  if (fallback) {
    fallback.focus();
    fallback.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
  return false;
}

/** A read-only field with the value and a Copy button (the field is labelled, so it can be selected by hand too). */
export function CopyField(props: { label: string; value: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  return (
    <div class="copy-field">
      <label>
        {props.label}
        <input ref={input} readOnly value={props.value} class="mono" onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
      </label>
      <button type="button" onClick={async () => setState((await copyText(props.value, input.current)) ? 'copied' : 'failed')} aria-label={`Copy ${props.label}`}>
        {state === 'copied' ? 'Copied' : 'Copy'}
      </button>
      <span class="small muted" role="status" aria-live="polite">
        {state === 'failed' ? 'Could not copy: select the text and copy it.' : ''}
      </span>
    </div>
  );
}

/** A secret the server returns once (an API key, a webhook secret, an invite link): shown until dismissed, never again. */
export function ShownOnce(props: { title: string; children?: ComponentChildren; label: string; value: string; onDone: () => void }) {
  return (
    <div class="shown-once card" role="region" aria-label={`${props.title} (shown once)`}>
      <strong>{props.title}</strong>
      <p class="small">This is shown only once. Copy it now and keep it somewhere safe; it cannot be shown again.</p>
      {props.children}
      <CopyField label={props.label} value={props.value} />
      <button type="button" onClick={props.onDone}>
        Done
      </button>
    </div>
  );
}

/** Parse a JSON text field; null with a message when it is not JSON (or not an object, when one is required). */
export function parseJsonField(text: string, opts: { object?: boolean; allowEmpty?: boolean } = {}): { value?: unknown; error: string | null } {
  if (text.trim() === '') return opts.allowEmpty ? { value: undefined, error: null } : { error: 'Enter JSON.' };
  try {
    const value: unknown = JSON.parse(text);
    if (opts.object && (value === null || typeof value !== 'object' || Array.isArray(value))) return { error: 'Enter a JSON object: { … }.' };
    return { value, error: null };
  } catch (err) {
    return { error: `Not valid JSON: ${(err as Error).message}` };
  }
}

export function formatPercent(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) return '—';
  const pct = rate * 100;
  return `${pct === 100 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)} %`;
}

/**
 * A labelled <select>. Not wrapped in its <label> (htmlFor instead): a
 * wrapping label's text would include every option's text, so the field's
 * accessible name would be "Role VIEWER MEMBER …" instead of "Role".
 */
export function SelectField(props: {
  label: ComponentChildren;
  value: string;
  onChange: (value: string) => void;
  disabled?: boolean;
  children: ComponentChildren;
}) {
  const id = useId();
  return (
    <span class="select-field">
      <label htmlFor={id}>{props.label}</label>
      <select id={id} value={props.value} disabled={props.disabled} onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}>
        {props.children}
      </select>
    </span>
  );
}
