import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the fake received: its path (with query), lower-cased headers, parsed JSON body. */
export interface FakeLlmRequest {
  path: string;
  headers: Record<string, string>;
  body: any;
}

/** What the fake answers: a reply (in the provider's wire format), an error status, or nothing at all (the connection hangs). */
export type FakeLlmReply =
  | { content: string; inputTokens?: number; outputTokens?: number }
  | { status: number; retryAfter?: string; body?: unknown }
  | { hang: true };

export interface FakeLlm {
  /** The baseUrl to put in the credential's secret. */
  url: string;
  requests: FakeLlmRequest[];
  /** How to answer from now on; the default answers `{ content: '{}' }`. */
  reply(fn: (req: FakeLlmRequest) => FakeLlmReply): void;
  close(): Promise<void>;
}

/**
 * A local OpenAI- or Anthropic-compatible server on 127.0.0.1: POST
 * `/chat/completions` (openai; also with `?api-version=` for Azure) or
 * `/v1/messages` (anthropic), answered in that provider's real format,
 * with usage counts (default: 10 in, 5 out) and the model asked for.
 */
export async function startFakeLlm(kind: 'openai' | 'anthropic'): Promise<FakeLlm> {
  const requests: FakeLlmRequest[] = [];
  let answer: (req: FakeLlmRequest) => FakeLlmReply = () => ({ content: '{}' });
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
      let body: any = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // kept as text
      }
      const request: FakeLlmRequest = { path: req.url ?? '/', headers, body };
      requests.push(request);
      const expected = kind === 'openai' ? '/chat/completions' : '/v1/messages';
      if (req.method !== 'POST' || !request.path.split('?')[0]!.endsWith(expected)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.method} ${request.path}` } }));
        return;
      }
      const r = answer(request);
      if ('hang' in r) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      if ('status' in r) {
        const h: Record<string, string> = { 'content-type': 'application/json' };
        if (r.retryAfter !== undefined) h['retry-after'] = r.retryAfter;
        const errorBody = r.body ?? (kind === 'openai'
          ? { error: { message: `fake error ${r.status}`, type: 'fake_error' } }
          : { type: 'error', error: { type: 'fake_error', message: `fake error ${r.status}` } });
        res.writeHead(r.status, h).end(JSON.stringify(errorBody));
        return;
      }
      const model = typeof body?.model === 'string' ? body.model : 'unknown';
      const inputTokens = r.inputTokens ?? 10;
      const outputTokens = r.outputTokens ?? 5;
      const reply =
        kind === 'openai'
          ? {
              id: `chatcmpl-${requests.length}`,
              object: 'chat.completion',
              created: Math.floor(Date.now() / 1000),
              model,
              choices: [{ index: 0, message: { role: 'assistant', content: r.content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
              usage: { prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens },
            }
          : {
              id: `msg_${requests.length}`,
              type: 'message',
              role: 'assistant',
              model,
              content: [{ type: 'text', text: r.content }],
              stop_reason: 'end_turn',
              stop_sequence: null,
              usage: { input_tokens: inputTokens, output_tokens: outputTokens },
            };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    reply(fn) {
      answer = fn;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
