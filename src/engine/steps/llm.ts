import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { StepBase } from '../../model/definition.js';
import { compileOutputSchema, outputErrors, type OutputError } from '../../ai/output-schema.js';
import { jsonInstruction, parseJsonReply, repairInstruction } from '../../ai/json-reply.js';
import { DEFAULT_LLM_PRICES, priceOf } from '../../ai/prices.js';
import { providerNamed, readSecret } from '../../ai/providers.js';
import type { ChatMessage, ChatProvider, ChatRequest, FinishReason, ProviderSecret } from '../../ai/types.js';
import { isPlainObject } from '../../util/json.js';
import { Redactor } from '../credentials.js';
import { renderString } from '../definition/expressions.js';
import { BUCKET_NAME_PATTERN } from '../definition/bucket-name.js';
import { callProvider, type LlmProgress } from './llm-call.js';
import { noChildren, StepError, Suspend, stepTimeout, type StepContext, type StepType } from './types.js';

/**
 * A chat completion through a credential (provider `openai`: OpenAI, Azure
 * OpenAI, compatible servers; `anthropic`). `system` and `prompt` are
 * `{{ }}` templates. With `output.schema` the reply must be a JSON object
 * valid against it (asked once more with the errors, then
 * LLM_OUTPUT_INVALID), parsed into `data`.
 */
export interface LlmStep extends StepBase {
  type: 'llm';
  credential: string;
  model: string;
  system?: string;
  prompt: string;
  output?: { schema: Record<string, unknown> };
  maxTokens?: number;
  temperature?: number;
  /** The one rate-limit bucket (of the workflow's rateLimits) this call takes a token from; default: all of them. */
  rateLimit?: string;
}

export interface LlmOutput {
  text: string;
  /** The reply parsed and validated against output.schema; null without one. */
  data: unknown;
  model: string;
  provider: string;
  finishReason: FinishReason;
  /** Summed over the step's calls (a repair call included); costUsd null when a model has no price. */
  usage: { inputTokens: number; outputTokens: number; costUsd: number | null };
}

/** Longest system prompt or prompt as written (rendered, they may be longer; the provider bounds them). */
const MAX_TEMPLATE_CHARS = 100_000;

export const llmStep: StepType<LlmStep> = {
  type: 'llm',
  properties: {
    credential: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
    model: { type: 'string', minLength: 1, maxLength: 200, pattern: '^\\S+$' },
    system: { type: 'string', maxLength: MAX_TEMPLATE_CHARS },
    prompt: { type: 'string', minLength: 1, maxLength: MAX_TEMPLATE_CHARS },
    output: { type: 'object', additionalProperties: false, required: ['schema'], properties: { schema: { type: 'object' } } },
    maxTokens: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    rateLimit: { type: 'string', pattern: BUCKET_NAME_PATTERN },
  },
  required: ['credential', 'model', 'prompt'],
  sources: (step) => ({ templates: { ...(step.system !== undefined ? { system: step.system } : {}), prompt: step.prompt } }),
  validate(step, path) {
    if (step.output) compileOutputSchema(step.output.schema, `${path}/output/schema`);
  },
  credentials: (step) => [step.credential],
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  // A provider call costs money and tokens: committed before and after, never repeated unknowingly.
  sideEffects: true,
  abortable: true,
  // It may suspend (a long Retry-After), which a compensation cannot.
  compensation: false,
  run: runLlm,
};

/** Compiled output schemas by step object (definitions are cached per worker, so each compiles once). */
const validators = new WeakMap<LlmStep, ValidateFunction>();

function validatorOf(step: LlmStep): ValidateFunction {
  let v = validators.get(step);
  if (!v) {
    v = compileOutputSchema(step.output!.schema, `steps.${step.id}.output.schema`);
    validators.set(step, v);
  }
  return v;
}

function openCredential(step: LlmStep, ctx: StepContext): { provider: ChatProvider; secret: ProviderSecret; redactor: Redactor } {
  const { provider: providerName, secret } = ctx.credential(step.credential);
  const provider = providerNamed(providerName);
  if (!provider) {
    throw new StepError('LLM_CREDENTIAL_INVALID', `credential "${step.credential}" is for provider "${providerName}"; an llm step needs openai or anthropic`, {
      credential: step.credential,
    });
  }
  const read = readSecret(provider.name, secret);
  if (typeof read === 'string') throw new StepError('LLM_CREDENTIAL_INVALID', `credential "${step.credential}": ${read}`, { credential: step.credential });
  return { provider, secret: read, redactor: new Redactor({ [step.credential]: secret as Record<string, unknown> }, { [step.credential]: providerName }) };
}

function progressFrom(resumed: Readonly<Record<string, unknown>> | undefined): LlmProgress {
  const saved = resumed?.llm as LlmProgress | undefined;
  if (!saved) return { retries: 0, usage: { inputTokens: 0, outputTokens: 0, costMicros: 0, priced: true }, repair: null };
  return { retries: saved.retries, usage: { ...saved.usage }, repair: saved.repair };
}

async function runLlm(step: LlmStep, ctx: StepContext): Promise<LlmOutput | Suspend> {
  const where = `steps.${step.id}`;
  const { provider, secret, redactor } = openCredential(step, ctx);
  const validate = step.output ? validatorOf(step) : undefined;
  const progress = progressFrom(ctx.resumed);
  const system = step.system !== undefined ? await renderString(step.system, ctx.scope, `${where}.system`) : null;
  const prompt = await renderString(step.prompt, ctx.scope, `${where}.prompt`);
  const instruction = step.output ? jsonInstruction(step.output.schema) : null;
  const fullSystem = instruction === null ? system : system === null || system === '' ? instruction : `${system}\n\n${instruction}`;
  const prices = ctx.services.aiUsage ? (model: string) => ctx.services.aiUsage!.priceOf(model) : (model: string) => priceOf(DEFAULT_LLM_PRICES, model);
  // The suspended state is kept in the checkpoint, where the step redactor does not reach: scrub a reply that echoed the key.
  const suspendState = () => ({ llm: redactor.value(progress) });

  for (;;) {
    const messages: ChatMessage[] = [{ role: 'user', content: prompt }];
    if (progress.repair) messages.push({ role: 'assistant', content: progress.repair.reply }, { role: 'user', content: repairInstruction(progress.repair.errors) });
    const request: ChatRequest = { model: step.model, system: fullSystem, messages, maxTokens: step.maxTokens, temperature: step.temperature, json: validate !== undefined };
    const result = await callProvider(ctx, { provider, secret, credential: step.credential, request }, progress, suspendState, prices);
    if (result instanceof Suspend) return result;

    let data: unknown = null;
    if (validate) {
      const errors = check(result.text, validate);
      if (errors !== null) {
        if (progress.repair) {
          throw new StepError('LLM_OUTPUT_INVALID', `the reply did not match output.schema twice: ${errors.map((e) => `${e.path || '(reply)'} ${e.message}`).join('; ')}`, {
            errors,
          });
        }
        ctx.log('WARN', 'the reply did not match output.schema; asking once more', { errors });
        progress.repair = { reply: result.text, errors };
        continue;
      }
      data = (parseJsonReply(result.text) as { value: unknown }).value;
      await markUsedDocuments(ctx, data);
    }
    const { usage } = progress;
    return {
      text: result.text,
      data,
      model: result.model,
      provider: provider.name,
      finishReason: result.finishReason,
      usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costUsd: usage.priced ? usage.costMicros / 1_000_000 : null },
    };
  }
}

/** Null when the reply is JSON valid against the schema, else what is wrong with it. */
function check(text: string, validate: ValidateFunction): OutputError[] | null {
  const parsed = parseJsonReply(text);
  if (!parsed.ok) return [{ path: '', message: parsed.error }];
  if (validate(parsed.value)) return null;
  return outputErrors(validate.errors);
}

/** Most document ids taken from one reply's usedDocuments. */
const MAX_USED_DOCUMENTS = 100;

/** `data.usedDocuments` (external ids) marks those documents used in the job's retrievals, when this worker has the knowledge service. */
async function markUsedDocuments(ctx: StepContext, data: unknown): Promise<void> {
  const knowledge = ctx.services.knowledge;
  if (!knowledge || !isPlainObject(data) || !Array.isArray(data.usedDocuments)) return;
  const documents = [...new Set(data.usedDocuments.filter((d): d is string => typeof d === 'string' && d.length > 0 && d.length <= 500))].slice(0, MAX_USED_DOCUMENTS);
  if (documents.length === 0) return;
  const { marked, unknown } = await knowledge.markUsed({
    organizationId: ctx.job.organizationId,
    jobId: ctx.job.id,
    usedByPath: ctx.path,
    retrievalPath: null,
    documents,
    reason: 'llm',
  });
  ctx.log('INFO', `marked ${marked} retrieved documents used`, { marked, ...(unknown.length > 0 ? { unknown } : {}) });
}
