import type { Outbound } from '../net/outbound.js';

/**
 * The seam between the llm step and the model providers it calls: one
 * request shape, one result shape, one file per wire format (openai.ts,
 * anthropic.ts). Nothing here knows about jobs, buckets or plans.
 */

/** A turn of the conversation after the system prompt. */
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface ChatRequest {
  model: string;
  system: string | null;
  messages: readonly ChatMessage[];
  maxTokens: number | undefined;
  temperature: number | undefined;
  /** Ask for a JSON object as the reply (the schema itself is in the system prompt). */
  json: boolean;
}

/** The normalised finish reasons (OpenAI's vocabulary; Anthropic's are mapped onto it). */
export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | (string & {});

export interface ChatResult {
  text: string;
  /** The model the provider says answered (a dated snapshot of the one asked for, often). */
  model: string;
  finishReason: FinishReason;
  inputTokens: number;
  outputTokens: number;
}

/**
 * How a call ended. `retryable` failures (429, 5xx, the connection) may be
 * tried again after `retryAfterMs` when the provider named a time; others
 * (400, 401, 404, an answer we cannot read) will not get better by waiting.
 */
export type CallOutcome =
  | { ok: true; result: ChatResult }
  | { ok: false; status: number | null; retryable: boolean; retryAfterMs: number | null; message: string };

/** A credential's secret, as the provider files read it (validated by `readSecret`). */
export interface ProviderSecret {
  apiKey: string;
  baseUrl: string | undefined;
  /** OpenAI provider only: set for Azure OpenAI (`?api-version=` and the `api-key` header). */
  apiVersion: string | undefined;
}

export type ProviderName = 'openai' | 'anthropic';

export interface ChatProvider {
  readonly name: ProviderName;
  /** `net`: the step's way to the network (its egress policy); a refused host throws EgressDeniedError. */
  call(request: ChatRequest, secret: ProviderSecret, net: Outbound, signal: AbortSignal): Promise<CallOutcome>;
}
