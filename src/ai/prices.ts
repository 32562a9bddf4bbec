import { ValidationError } from '../errors/index.js';

/** USD per 1M input and output tokens (equal to micro-USD per token). */
export interface ModelPrice {
  input: number;
  output: number;
}

export type PriceTable = Readonly<Record<string, ModelPrice>>;

/**
 * List prices of a few well-known models (USD per 1M tokens, standard tier,
 * as the providers published them when this table was written). Prices
 * change and contracts differ: STEPWISE_LLM_PRICES overrides or adds models.
 */
export const DEFAULT_LLM_PRICES: PriceTable = Object.freeze({
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'o3-mini': { input: 1.1, output: 4.4 },
  'claude-3-haiku': { input: 0.25, output: 1.25 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'claude-3-7-sonnet': { input: 3, output: 15 },
  'claude-sonnet-4': { input: 3, output: 15 },
  'claude-opus-4': { input: 15, output: 75 },
});

/** Most models STEPWISE_LLM_PRICES may name (a price table, not a catalogue). */
const MAX_PRICED_MODELS = 500;
/** A price above this per 1M tokens is a typo (per-token prices pasted as per-1M are far below it; cents as dollars above it). */
const MAX_PRICE = 10_000;

/**
 * STEPWISE_LLM_PRICES (`{"model":{"input":x,"output":y}}`) over the
 * defaults; ValidationError naming the variable and the bad entry.
 */
export function parsePriceTable(raw: string | undefined, name = 'STEPWISE_LLM_PRICES'): PriceTable {
  if (raw === undefined || raw.trim() === '') return DEFAULT_LLM_PRICES;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new ValidationError(`${name} is not valid JSON: ${(err as Error).message}`, { path: name });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError(`${name} must be a JSON object of model → {"input": USD per 1M tokens, "output": USD per 1M tokens}`, { path: name });
  }
  const entries = Object.entries(parsed);
  if (entries.length > MAX_PRICED_MODELS) {
    throw new ValidationError(`${name} names ${entries.length} models; the limit is ${MAX_PRICED_MODELS}`, { path: name, limit: MAX_PRICED_MODELS });
  }
  const table: Record<string, ModelPrice> = { ...DEFAULT_LLM_PRICES };
  for (const [model, price] of entries) {
    const at = `${name}.${model}`;
    if (model.length === 0 || model.length > 200) throw new ValidationError(`${name} has a model name of ${model.length} characters (1 to 200)`, { path: at });
    if (typeof price !== 'object' || price === null || Array.isArray(price)) {
      throw new ValidationError(`${at} must be {"input": number, "output": number}`, { path: at });
    }
    const p = price as Record<string, unknown>;
    for (const field of ['input', 'output'] as const) {
      const v = p[field];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_PRICE) {
        throw new ValidationError(`${at}.${field} must be a number of USD per 1M tokens between 0 and ${MAX_PRICE}`, { path: `${at}.${field}`, min: 0, max: MAX_PRICE });
      }
    }
    const extra = Object.keys(p).find((k) => k !== 'input' && k !== 'output');
    if (extra !== undefined) throw new ValidationError(`${at}.${extra} is not a known field (input, output)`, { path: `${at}.${extra}` });
    table[model] = { input: p.input as number, output: p.output as number };
  }
  return Object.freeze(table);
}

/**
 * The price of a model: its exact name, else the longest priced name it
 * starts with followed by `-` (a dated snapshot such as
 * `gpt-4o-mini-2024-07-18` or `claude-3-5-haiku-20241022` costs what its
 * family does). Null for a model the table does not know.
 */
export function priceOf(table: PriceTable, model: string): ModelPrice | null {
  const exact = table[model];
  if (exact && Object.hasOwn(table, model)) return exact;
  let best: string | undefined;
  for (const name of Object.keys(table)) {
    if (model.startsWith(`${name}-`) && (best === undefined || name.length > best.length)) best = name;
  }
  return best === undefined ? null : table[best]!;
}

/** Micro-USD for the tokens (USD per 1M tokens is micro-USD per token), rounded to a whole micro-dollar. */
export function costMicros(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  return Math.round(inputTokens * price.input + outputTokens * price.output);
}
