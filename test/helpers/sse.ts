/** One server-sent event as a client sees it. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * A text/event-stream client over fetch with a small parser (the subset
 * Stepwise sends: id, event, data, comments). It reads as fast as the server
 * writes unless opened with `read: false` (a client that falls behind).
 */
export class SseClient {
  readonly messages: SseMessage[] = [];
  /** Comment lines (`: ping`). */
  readonly comments: string[] = [];
  /** Resolves when the response ended (by the server, or by an error such as a cut connection). */
  readonly ended: Promise<'end' | 'error'>;
  private consumed = 0;
  private waiters: (() => void)[] = [];
  private done = false;

  private constructor(
    readonly response: Response,
    private readonly abort: AbortController,
    read: boolean,
  ) {
    this.ended = read ? this.pump() : Promise.resolve('end');
  }

  /** Open `url`; a non-200 answer is returned as { status, body } instead. */
  static async open(url: string, headers: Record<string, string>, opts: { read?: boolean } = {}): Promise<SseClient> {
    const abort = new AbortController();
    const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
    return new SseClient(response, abort, opts.read ?? response.status === 200);
  }

  get status(): number {
    return this.response.status;
  }

  /** Read what the server sent so far and after, until it ends (for a client opened with read: false). */
  drain(): Promise<'end' | 'error'> {
    return this.pump();
  }

  /** The next message (after those already returned) that matches; waits for it, failing if the stream ends first. */
  async next(match: (m: SseMessage) => boolean = () => true, what = 'a matching event'): Promise<SseMessage> {
    for (;;) {
      while (this.consumed < this.messages.length) {
        const m = this.messages[this.consumed++]!;
        if (match(m)) return m;
      }
      if (this.done) throw new Error(`the event stream ended before ${what}; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Close the connection from the client side. */
  close(): void {
    this.abort.abort();
  }

  private async pump(): Promise<'end' | 'error'> {
    const reader = this.response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let outcome: 'end' | 'error' = 'end';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          this.parse(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
        this.wake();
      }
    } catch {
      outcome = 'error';
    }
    this.done = true;
    this.wake();
    return outcome;
  }

  private parse(block: string): void {
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim());
        continue;
      }
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (name === 'id') id = value;
      else if (name === 'event') event = value;
      else if (name === 'data') data.push(value);
    }
    if (data.length > 0) this.messages.push({ id, event, data: data.join('\n') });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
