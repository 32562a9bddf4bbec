import { useEffect, useRef } from 'preact/hooks';
import { formatTime, useZone } from '../../time.js';
import type { ScreenshotJson } from './data.js';

/**
 * A screenshot in a modal <dialog>: the image (read through the API with
 * the session cookie, so the PHI read audit applies), its step, time and
 * seq, and the run's other screenshots with prev/next (arrow keys too).
 */
export function ScreenshotViewer(props: {
  shots: readonly ScreenshotJson[];
  index: number;
  stepLabel: (s: ScreenshotJson) => string;
  onIndex: (i: number) => void;
  onTravel: (seq: number) => void;
  onClose: () => void;
}) {
  const zone = useZone();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  const shot = props.shots[props.index];
  if (!shot) return null;
  const prev = props.index > 0 ? props.index - 1 : null;
  const next = props.index < props.shots.length - 1 ? props.index + 1 : null;
  const isImage = shot.contentType.startsWith('image/');
  return (
    <dialog
      ref={ref}
      class="dialog shot-viewer"
      aria-labelledby="shot-title"
      onCancel={(e) => (e.preventDefault(), props.onClose())}
      onKeyDown={(e) => {
        if (e.key === 'ArrowLeft' && prev !== null) props.onIndex(prev);
        else if (e.key === 'ArrowRight' && next !== null) props.onIndex(next);
      }}
    >
      <div class="shot-head">
        <h2 id="shot-title">
          {shot.type === 'ERROR_SCREENSHOT' ? 'Error screenshot' : 'Screenshot'}
          {shot.name ? `: ${shot.name}` : ''}
        </h2>
        <span class="muted small">
          {props.index + 1} of {props.shots.length}
        </span>
      </div>
      <p class="muted small">
        Step {props.stepLabel(shot)} · {formatTime(shot.capturedAt, zone, { ms: true })}
        {shot.streamSeq !== null ? ` · seq ${shot.streamSeq}` : ''}
        {shot.width && shot.height ? ` · ${shot.width}×${shot.height}` : ''}
      </p>
      <div class="shot-frame">
        {isImage ? (
          <img src={shot.contentUrl} alt={`${shot.type.toLowerCase().replace('_', ' ')} ${shot.name ?? ''} of step ${props.stepLabel(shot)}`} />
        ) : (
          <p>
            This artifact is {shot.contentType}: <a href={shot.contentUrl}>download it</a>.
          </p>
        )}
      </div>
      <div class="dialog-actions">
        <button type="button" disabled={prev === null} onClick={() => prev !== null && props.onIndex(prev)}>
          ← Previous
        </button>
        <button type="button" disabled={next === null} onClick={() => next !== null && props.onIndex(next)}>
          Next →
        </button>
        {shot.streamSeq !== null && (
          <button type="button" onClick={() => props.onTravel(shot.streamSeq!)}>
            Show state at seq {shot.streamSeq}
          </button>
        )}
        <button type="button" class="primary" onClick={props.onClose}>
          Close
        </button>
      </div>
    </dialog>
  );
}
