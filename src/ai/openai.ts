import { connectionFailure, postJson, statusFailure, tokenCount, unreadable } from './http.js';
import type { CallOutcome, ChatProvider, ChatRequest, ProviderSecret } from './types.js';

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/**
 * OpenAI-compatible chat completions: OpenAI itself, Azure OpenAI (a secret
 * with `apiVersion`: `?api-version=` and the `api-key` header, its baseUrl
 * the deployment's `…/openai/deployments/<name>`), and local servers that
 * speak the same format (llama.cpp, vLLM, Ollama) through `baseUrl`.
 */
export const openAiProvider: ChatProvider = {
  name: 'openai',
  async call(request, secret, net, signal): Promise<CallOutcome> {
    const answer = await postJson(openAiUrl(secret), openAiHeaders(secret), openAiBody(request, secret), net, signal);
    if (answer.kind === 'failed') return connectionFailure(answer.message);
    if (answer.status < 200 || answer.status > 299) return statusFailure('openai', answer.status, answer.body, answer.retryAfterMs);
    const body = answer.body as {
      model?: unknown;
      choices?: { message?: { content?: unknown; refusal?: unknown }; finish_reason?: unknown }[];
      usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
    } | null;
    const choice = Array.isArray(body?.choices) ? body.choices[0] : undefined;
    if (!choice || typeof choice !== 'object') return unreadable('openai', 'a choice');
    const content = choice.message?.content;
    // A refusal comes with content null and the reason in `refusal`: it is the model's answer, not a transport failure.
    const text = typeof content === 'string' ? content : typeof choice.message?.refusal === 'string' ? choice.message.refusal : '';
    return {
      ok: true,
      result: {
        text,
        model: typeof body?.model === 'string' ? body.model : request.model,
        finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : 'stop',
        inputTokens: tokenCount(body?.usage?.prompt_tokens),
        outputTokens: tokenCount(body?.usage?.completion_tokens),
      },
    };
  },
};

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export function openAiUrl(secret: ProviderSecret): string {
  const base = trimSlash(secret.baseUrl ?? OPENAI_DEFAULT_BASE_URL);
  const url = `${base}/chat/completions`;
  return secret.apiVersion === undefined ? url : `${url}?api-version=${encodeURIComponent(secret.apiVersion)}`;
}

export function openAiHeaders(secret: ProviderSecret): Record<string, string> {
  return secret.apiVersion === undefined ? { authorization: `Bearer ${secret.apiKey}` } : { 'api-key': secret.apiKey };
}

export function openAiBody(request: ChatRequest, secret: ProviderSecret): Record<string, unknown> {
  const messages = [...(request.system !== null ? [{ role: 'system', content: request.system }] : []), ...request.messages];
  const body: Record<string, unknown> = { model: request.model, messages };
  if (request.maxTokens !== undefined) {
    // OpenAI's own API refuses `max_tokens` for its reasoning models and takes
    // `max_completion_tokens` for all; the compatible servers behind a baseUrl
    // (and older Azure API versions) know only `max_tokens`.
    const official = secret.baseUrl === undefined && secret.apiVersion === undefined;
    body[official ? 'max_completion_tokens' : 'max_tokens'] = request.maxTokens;
  }
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.json) body.response_format = { type: 'json_object' };
  return body;
}
