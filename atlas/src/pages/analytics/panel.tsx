import type { ComponentChildren } from 'preact';
import type { ApiError } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';

/** One analytics panel: a titled region with its own loading and error state (a failed panel never blanks the page). */
export function Panel(props: {
  title: string;
  loading: boolean;
  error: ApiError | null;
  onRetry: () => void;
  hasData: boolean;
  children: ComponentChildren;
  class?: string;
}) {
  return (
    <section class={`card panel ${props.class ?? ''}`} aria-label={props.title} aria-busy={props.loading ? 'true' : 'false'}>
      <h2>{props.title}</h2>
      {props.error ? <ErrorBox error={props.error} what={props.title.toLowerCase()} onRetry={props.onRetry} /> : !props.hasData || props.loading ? <Loading /> : props.children}
    </section>
  );
}

