import { useState } from 'preact/hooks';

/** What ?phi=mask puts in place of a protected value (read/phi-mask.ts). */
export const MASKED = '‹masked›';

const LIMIT = 20_000;

/** A JSON value, pretty-printed; masked PHI values are marked, long values cut until asked for. */
export function JsonView(props: { value: unknown; label?: string }) {
  const [all, setAll] = useState(false);
  if (props.value === undefined) return <p class="muted small">none</p>;
  let text: string;
  try {
    text = JSON.stringify(props.value, null, 2) ?? 'undefined';
  } catch {
    text = String(props.value);
  }
  const long = text.length > LIMIT;
  const shown = long && !all ? text.slice(0, LIMIT) : text;
  const parts = shown.split(`"${MASKED}"`);
  return (
    <div class="json-view">
      <pre aria-label={props.label}>
        {parts.map((p, i) => (
          <>
            {p}
            {i < parts.length - 1 && (
              <span class="masked" title="PHI, masked: reveal to see it (the read is audited)">
                {MASKED}
              </span>
            )}
          </>
        ))}
      </pre>
      {long && (
        <button type="button" class="small" onClick={() => setAll(!all)}>
          {all ? 'Show less' : `Show all ${Math.round(text.length / 1024)} KB`}
        </button>
      )}
    </div>
  );
}

/** True when a value holds a masked PHI value somewhere. */
export function hasMasked(value: unknown): boolean {
  if (value === MASKED) return true;
  if (value === null || typeof value !== 'object') return false;
  try {
    return JSON.stringify(value).includes(MASKED);
  } catch {
    return false;
  }
}
