import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/**
 * A button that opens a small panel (status choices, saved views, retry
 * modes). A real <button aria-expanded>, so screen readers and getByRole see
 * it; Escape or a click outside closes it and gives focus back.
 */
export function Dropdown(props: {
  label: ComponentChildren;
  /** Accessible name when the visible label is not enough. */
  ariaLabel?: string;
  buttonClass?: string;
  align?: 'left' | 'right';
  children: (close: () => void) => ComponentChildren;
}) {
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        setOpen(false);
        button.current?.focus();
      }
    };
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey, true);
    };
  }, [open]);
  const close = () => {
    setOpen(false);
    button.current?.focus();
  };
  return (
    <div class="dropdown" ref={root}>
      <button
        ref={button}
        type="button"
        class={`dropdown-button ${props.buttonClass ?? ''}`}
        aria-expanded={open}
        aria-haspopup="true"
        aria-label={props.ariaLabel}
        onClick={() => setOpen(!open)}
      >
        {props.label}
        <span class="caret" aria-hidden="true">
          ▾
        </span>
      </button>
      {open && <div class={`dropdown-panel ${props.align === 'right' ? 'right' : ''}`}>{props.children(close)}</div>}
    </div>
  );
}
