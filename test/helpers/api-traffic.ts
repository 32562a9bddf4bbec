import { performance } from 'node:perf_hooks';
import { GO_SIGNAL, type Workload } from './outage-workload.js';

/**
 * A steady mix of API traffic against a running `stepwise serve`, open loop
 * (requests leave at a fixed rate whatever the answers, as independent
 * clients would send them), recording every request's route, status,
 * latency and Retry-After, and every run it started.
 *
 * It behaves like a careful client: a start that was not answered 2xx is
 * sent again later with the same idempotency key (a 503 says nothing of
 * whether the start committed), so every run the database holds is known
 * here by its key; a signal or cancel that failed is sent again. `settle()`
 * sends everything still owed, so afterwards every run can be checked.
 */

/** What was requested, as reported per route. */
export type Operation =
  | 'start'
  | 'start-batch'
  | 'start-gated'
  | 'signal'
  | 'cancel'
  | 'list-jobs'
  | 'get-job'
  | 'stream'
  | 'timeline'
  | 'analytics';

/** One request. `status` is the HTTP status, or 'timeout' (no answer within the bound) or 'network' (the connection failed). */
export interface RequestSample {
  op: Operation;
  status: number | 'timeout' | 'network';
  /** When it was sent (epoch ms). */
  at: number;
  ms: number;
  /** The Retry-After header of the answer, when it had one. */
  retryAfter: string | undefined;
  /** The error code of a non-2xx answer's body, when it had one. */
  code: string | undefined;
  /** The error message of a non-2xx answer's body (its first 200 characters), when it had one. */
  message: string | undefined;
}

/** What the test means to do with a gated run. */
export type GatedFate = 'signal' | 'cancel';

/** A run this traffic asked for, by its key. */
export interface TrackedRun {
  key: string;
  workflow: 'effect' | 'gated';
  /** Undefined until a start was answered 2xx. */
  jobId: string | undefined;
  /** When its start was first answered 2xx (epoch ms). */
  acceptedAt: number | undefined;
  /** Gated runs: signalled or cancelled. */
  fate: GatedFate | undefined;
  /** Gated runs: its signal or cancel was answered 202. */
  actedOn: boolean;
}

/** The share of each operation in the mix; they need not add up to anything. */
export type TrafficMix = Record<Operation, number>;

/**
 * Starts (a third of the requests, a few of them batches), a signal or a
 * cancel for most gated runs, and reads of the dashboard kind: lists, a job,
 * its stream and timeline, analytics.
 */
export const DEFAULT_MIX: Readonly<TrafficMix> = Object.freeze({
  start: 22,
  'start-batch': 3,
  'start-gated': 8,
  signal: 7,
  cancel: 2,
  'list-jobs': 14,
  'get-job': 12,
  stream: 12,
  timeline: 12,
  analytics: 8,
});

/** Runs per batch start. */
export const BATCH_SIZE = 5;

export interface TrafficOptions {
  apiUrl: string;
  workload: Workload;
  /** Requests per second sent. */
  ratePerSecond: number;
  /** A request not answered within this long counts as hung ('timeout') and is abandoned. */
  requestTimeoutMs: number;
  mix?: TrafficMix;
  /** At most this many requests in flight; a tick beyond it is skipped and counted (the client is saturated, not the server measured). */
  maxInFlight?: number;
}

/** Sends the traffic; `stop` ends it, `settle` then sends whatever is still owed. */
export class ApiTraffic {
  readonly samples: RequestSample[] = [];
  readonly runs = new Map<string, TrackedRun>();
  /** Ticks skipped because maxInFlight requests were outstanding. */
  skipped = 0;
  private readonly mix: [Operation, number][];
  private readonly mixTotal: number;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private seq = 0;
  /** Starts not yet answered 2xx, to be sent again with the same keys (a batch as a whole). */
  private readonly unacknowledged: { op: 'start' | 'start-batch' | 'start-gated'; keys: string[] }[] = [];
  /** Gated runs accepted and not yet acted on, oldest first. */
  private readonly gatedWaiting: TrackedRun[] = [];
  /** Accepted runs, for reads (bounded: the newest are read). */
  private readonly readable: string[] = [];
  private readonly headers: Record<string, string>;
  private readonly maxInFlight: number;

  constructor(private readonly opts: TrafficOptions) {
    this.mix = Object.entries(opts.mix ?? DEFAULT_MIX).filter(([, w]) => w > 0) as [Operation, number][];
    this.mixTotal = this.mix.reduce((n, [, w]) => n + w, 0);
    this.headers = { authorization: `Bearer ${opts.workload.apiKey}`, 'content-type': 'application/json' };
    this.maxInFlight = opts.maxInFlight ?? 500;
  }

  /** Start sending at the configured rate. */
  start(): void {
    if (this.timer) return;
    const intervalMs = 1000 / this.opts.ratePerSecond;
    let next = performance.now();
    const tick = (): void => {
      // Catch up on ticks a busy event loop delayed, so the rate holds on average.
      const now = performance.now();
      while (next <= now) {
        next += intervalMs;
        if (this.inFlight.size >= this.maxInFlight) this.skipped++;
        else this.track(this.send(this.pick()));
      }
      this.timer = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    tick();
  }

  /** Stop sending and wait for the requests in flight (each ends within requestTimeoutMs). */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
  }

  /**
   * Send what is still owed, until nothing is or `timeoutMs` passes: the
   * starts never answered 2xx (same keys), and a signal or cancel for every
   * gated run that has had neither answered 202. Resolves with what is left
   * (empty when everything was sent).
   */
  async settle(timeoutMs: number): Promise<{ unacknowledgedStarts: number; gatedNotActedOn: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.unacknowledged.length > 0 && Date.now() < deadline) await this.sendStart(this.unacknowledged.shift()!);
      for (const run of [...this.runs.values()]) {
        if (run.workflow !== 'gated' || run.jobId === undefined || run.actedOn || Date.now() >= deadline) continue;
        await this.act(run, run.fate ?? 'signal');
      }
      const left = {
        unacknowledgedStarts: this.unacknowledged.reduce((n, s) => n + s.keys.length, 0),
        gatedNotActedOn: [...this.runs.values()].filter((r) => r.workflow === 'gated' && !r.actedOn).length,
      };
      if ((left.unacknowledgedStarts === 0 && left.gatedNotActedOn === 0) || Date.now() >= deadline) return left;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private pick(): Operation {
    let r = Math.random() * this.mixTotal;
    for (const [op, w] of this.mix) {
      r -= w;
      if (r < 0) return op;
    }
    return this.mix[this.mix.length - 1]![0];
  }

  /** A read of a random one of the newest accepted runs, or undefined before any. */
  private someJob(): string | undefined {
    if (this.readable.length === 0) return undefined;
    return this.readable[Math.floor(Math.random() * this.readable.length)];
  }

  private async send(op: Operation): Promise<void> {
    switch (op) {
      case 'start':
      case 'start-batch':
      case 'start-gated': {
        // A start owed from before goes first, with its own keys: a client retrying after a 503.
        const owed = this.unacknowledged.shift();
        if (owed) return this.sendStart(owed);
        const n = ++this.seq;
        const keys = op === 'start-batch' ? Array.from({ length: BATCH_SIZE }, (_, i) => `b${n}.${i}`) : [`${op === 'start-gated' ? 'g' : 'e'}${n}`];
        for (const key of keys) {
          const gated = op === 'start-gated';
          this.runs.set(key, { key, workflow: gated ? 'gated' : 'effect', jobId: undefined, acceptedAt: undefined, fate: gated ? (n % 5 === 0 ? 'cancel' : 'signal') : undefined, actedOn: false });
        }
        return this.sendStart({ op, keys });
      }
      case 'signal':
      case 'cancel': {
        const i = this.gatedWaiting.findIndex((r) => r.fate === op);
        if (i < 0) return this.read('list-jobs');
        const [run] = this.gatedWaiting.splice(i, 1);
        return this.act(run!, op);
      }
      default:
        return this.read(op);
    }
  }

  private async sendStart(start: { op: 'start' | 'start-batch' | 'start-gated'; keys: string[] }): Promise<void> {
    const { effectWorkflowId, gatedWorkflowId } = this.opts.workload;
    const workflowId = start.op === 'start-gated' ? gatedWorkflowId : effectWorkflowId;
    const res =
      start.op === 'start-batch'
        ? await this.request(start.op, 'POST', `/v1/workflows/${workflowId}/runs/batch`, {
            runs: start.keys.map((key) => ({ input: { key }, idempotencyKey: key })),
          })
        : await this.request(start.op, 'POST', `/v1/workflows/${workflowId}/runs`, { input: { key: start.keys[0] }, idempotencyKey: start.keys[0] });
    if (res === undefined || res.status >= 300) {
      this.unacknowledged.push(start);
      return;
    }
    const jobIds: string[] = start.op === 'start-batch' ? (res.body as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId) : [(res.body as { jobId: string }).jobId];
    start.keys.forEach((key, i) => this.accepted(key, jobIds[i]!));
  }

  private accepted(key: string, jobId: string): void {
    const run = this.runs.get(key)!;
    if (run.jobId !== undefined) {
      if (run.jobId !== jobId) throw new Error(`key ${key} answered job ${jobId}, earlier ${run.jobId}: the idempotency key did not hold`);
      return;
    }
    run.jobId = jobId;
    run.acceptedAt = Date.now();
    this.readable.push(jobId);
    if (this.readable.length > 200) this.readable.shift();
    if (run.workflow === 'gated') this.gatedWaiting.push(run);
  }

  /** Signal or cancel a gated run; one not answered 202 goes back to be acted on later. */
  private async act(run: TrackedRun, fate: GatedFate): Promise<void> {
    const path = fate === 'signal' ? `/v1/jobs/${run.jobId}/signals/${GO_SIGNAL}` : `/v1/jobs/${run.jobId}/cancel`;
    const res = await this.request(fate, 'POST', path, fate === 'signal' ? { payload: { from: 'traffic' } } : {});
    // 409: the job has ended, which a gated run does only once signalled or cancelled: an earlier request
    // answered 503 had committed after all. Its outcome is checked with every other run's.
    if (res?.status === 202 || res?.status === 409) run.actedOn = true;
    else if (!this.gatedWaiting.includes(run)) this.gatedWaiting.push(run);
  }

  private async read(op: Operation): Promise<void> {
    const jobId = this.someJob();
    switch (op) {
      case 'list-jobs':
        await this.request(op, 'GET', '/v1/jobs?limit=20');
        return;
      case 'analytics':
        await this.request(op, 'GET', '/v1/analytics/workflows');
        return;
      case 'get-job':
      case 'stream':
      case 'timeline': {
        if (!jobId) return this.read('list-jobs');
        const suffix = op === 'get-job' ? '' : op === 'stream' ? '/stream?limit=100' : '/timeline';
        await this.request(op, 'GET', `/v1/jobs/${jobId}${suffix}`);
        return;
      }
      default:
        throw new Error(`not a read: ${op}`);
    }
  }

  /** One request, recorded; the parsed answer, or undefined when none came (timeout, network). */
  private async request(op: Operation, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown } | undefined> {
    const at = Date.now();
    const began = performance.now();
    const sample: RequestSample = { op, status: 'network', at, ms: 0, retryAfter: undefined, code: undefined, message: undefined };
    try {
      const res = await fetch(`${this.opts.apiUrl}${path}`, {
        method,
        headers: this.headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.opts.requestTimeoutMs),
      });
      const text = await res.text();
      sample.status = res.status;
      sample.retryAfter = res.headers.get('retry-after') ?? undefined;
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: kept as text
      }
      if (res.status >= 300) {
        const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
        sample.code = error?.code;
        sample.message = error?.message?.slice(0, 200);
      }
      return { status: res.status, body: parsed };
    } catch (err) {
      sample.status = (err as Error).name === 'TimeoutError' ? 'timeout' : 'network';
      return undefined;
    } finally {
      sample.ms = performance.now() - began;
      this.samples.push(sample);
    }
  }
}
