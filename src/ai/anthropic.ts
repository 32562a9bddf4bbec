import { connectionFailure, postJson, statusFailure, tokenCount, unreadable } from './http.js';
import type { CallOutcome, ChatProvider, ChatRequest, FinishReason, ProviderSecret } from './types.js';

export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';
export const ANTHROPIC_VERSION = '2023-06-01';
/** The Messages API requires max_tokens; this is what a step without `maxTokens` asks for. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 1024;

/**
 * Anthropic Messages (POST /v1/messages). It has no JSON mode: the llm
 * step's system prompt asks for the JSON object, and the reply is parsed
 * the same way as OpenAI's.
 */
export const anthropicProvider: ChatProvider = {
  name: 'anthropic',
  async call(request, secret, net, signal): Promise<CallOutcome> {
    const answer = await postJson(anthropicUrl(secret), anthropicHeaders(secret), anthropicBody(request), net, signal);
    if (answer.kind === 'failed') return connectionFailure(answer.message);
    if (answer.status < 200 || answer.status > 299) return statusFailure('anthropic', answer.status, answer.body, answer.retryAfterMs);
    const body = answer.body as {
      model?: unknown;
      content?: { type?: unknown; text?: unknown }[];
      stop_reason?: unknown;
      usage?: { input_tokens?: unknown; output_tokens?: unknown };
    } | null;
    if (!Array.isArray(body?.content)) return unreadable('anthropic', 'content');
    const text = body.content
      .filter((b) => b?.type === 'text' && typeof b.text === 'string')
      .map((b) => b.text as string)
      .join('');
    return {
      ok: true,
      result: {
        text,
        model: typeof body.model === 'string' ? body.model : request.model,
        finishReason: finishReason(body.stop_reason),
        inputTokens: tokenCount(body.usage?.input_tokens),
        outputTokens: tokenCount(body.usage?.output_tokens),
      },
    };
  },
};

export function anthropicUrl(secret: ProviderSecret): string {
  return `${(secret.baseUrl ?? ANTHROPIC_DEFAULT_BASE_URL).replace(/\/+$/, '')}/v1/messages`;
}

export function anthropicHeaders(secret: ProviderSecret): Record<string, string> {
  return { 'x-api-key': secret.apiKey, 'anthropic-version': ANTHROPIC_VERSION };
}

export function anthropicBody(request: ChatRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: request.model,
    max_tokens: request.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
    messages: request.messages,
  };
  if (request.system !== null) body.system = request.system;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  return body;
}

/** Anthropic's stop reasons in the OpenAI vocabulary the step's output uses, so a workflow can switch providers. */
function finishReason(reason: unknown): FinishReason {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return typeof reason === 'string' ? reason : 'stop';
  }
}
