import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import { Link } from '../../components/link.js';
import { navigate } from '../../router.js';
import { FormError, parseJsonField, useMutation } from '../settings/kit.js';
import { inputSkeleton } from './input-skeleton.js';
import type { RunAccepted, Workflow } from './types.js';

/** Start a run with an input typed as JSON; on success, open it in the inspector. Not shown to VIEWER. */
export function RunTab(props: { workflow: Workflow }) {
  const w = props.workflow;
  const [text, setText] = useState(() => JSON.stringify(inputSkeleton(w.definition), null, 2));
  const [idempotencyKey, setIdempotencyKey] = useState('');
  const [started, setStarted] = useState<RunAccepted | null>(null);
  const m = useMutation();
  const parsed = parseJsonField(text, { allowEmpty: true });
  const paused = w.status !== 'ACTIVE';

  const submit = async (e: Event) => {
    e.preventDefault();
    if (parsed.error) return;
    const run = await m.run(() =>
      api<RunAccepted>(`/v1/workflows/${w.id}/runs`, {
        method: 'POST',
        body: { ...(parsed.value !== undefined ? { input: parsed.value } : {}), ...(idempotencyKey.trim() ? { idempotencyKey: idempotencyKey.trim() } : {}) },
      }),
    );
    if (run) {
      setStarted(run);
      navigate(`/runs/${run.jobId}`);
    }
  };

  return (
    <section aria-label="Run now">
      <form class="run-form" onSubmit={submit}>
        {paused && <p class="notice">This workflow is {w.status}: the server may refuse new runs.</p>}
        <label class="block">
          Input (JSON)
          <textarea
            rows={14}
            spellcheck={false}
            value={text}
            aria-invalid={parsed.error ? 'true' : 'false'}
            aria-describedby="run-input-help"
            onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
          />
        </label>
        <p id="run-input-help" class={parsed.error ? 'form-error small' : 'muted small'} role={parsed.error ? 'alert' : undefined}>
          {parsed.error ?? 'Valid JSON. Leave empty to start the run without input.'}
        </p>
        <div class="field-row">
          <label>
            Idempotency key (optional)
            <input value={idempotencyKey} maxLength={200} onInput={(e) => setIdempotencyKey((e.currentTarget as HTMLInputElement).value)} />
          </label>
          <button type="button" onClick={() => setText(JSON.stringify(inputSkeleton(w.definition), null, 2))}>
            Reset input
          </button>
          <button
            type="button"
            disabled={!!parsed.error || parsed.value === undefined}
            onClick={() => setText(JSON.stringify(parsed.value, null, 2))}
          >
            Format JSON
          </button>
          <button type="submit" class="primary" disabled={m.busy || !!parsed.error}>
            {m.busy ? 'Starting…' : 'Start run'}
          </button>
        </div>
        <FormError error={m.error} />
        {started && (
          <p role="status">
            Started run #{started.runNumber}: <Link href={`/runs/${started.jobId}`}>open it</Link>.
          </p>
        )}
      </form>
    </section>
  );
}
