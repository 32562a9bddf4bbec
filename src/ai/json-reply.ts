/**
 * A model's reply read as JSON: the whole text, or the inside of one
 * ```json fence (models add one even when told not to). Returns the value,
 * or the parse error's message.
 */
export function parseJsonReply(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const trimmed = text.trim();
  const fenced = /^```[A-Za-z0-9_-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```$/.exec(trimmed);
  const body = fenced ? fenced[1]! : trimmed;
  if (body === '') return { ok: false, error: 'the reply is empty' };
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch (err) {
    return { ok: false, error: `the reply is not JSON: ${(err as Error).message}` };
  }
}

/** The instruction added to the system prompt when the step has an output schema. */
export function jsonInstruction(schema: unknown): string {
  return (
    'Reply with one JSON object only, no prose and no code fence. ' +
    `It must be valid against this JSON Schema:\n${JSON.stringify(schema)}`
  );
}

/** The follow-up turn after an invalid reply: what was wrong, and the same request again. */
export function repairInstruction(errors: readonly { path: string; message: string }[]): string {
  const list = errors.map((e) => `- ${e.path === '' ? '(the reply)' : e.path}: ${e.message}`).join('\n');
  return `That reply is not valid:\n${list}\nReply again with only the corrected JSON object.`;
}
