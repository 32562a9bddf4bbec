/** A job or step status as a coloured badge (colour is never the only signal: the word is always there). */
export function StatusBadge(props: { status: string }) {
  return <span class={`badge status-${props.status.toLowerCase()}`}>{props.status.replace(/_/g, ' ')}</span>;
}
