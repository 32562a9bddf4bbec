import { readFile } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import { ValidationError } from '../errors/index.js';
import { createBlobStore } from '../blob/index.js';
import { startRuns, Worker } from '../engine/index.js';
import { withStoredResult } from '../engine/results.js';
import { findJob, listStream, TERMINAL_STATUSES, type Job } from '../store/index.js';
import { openForKey, requireKey } from './context.js';
import { openKeyRing } from './keyring.js';
import { credentialResolver } from '../security/credentials.js';
import { keyRingSealer } from '../security/sealer.js';
import { workerBrowserSessions } from '../browser/worker-browser.js';

export interface RunOptions {
  key?: string | undefined;
  url?: string | undefined;
  input?: string | undefined;
  inputFile?: string | undefined;
  clientId?: string | undefined;
  idempotencyKey?: string | undefined;
  wait: boolean;
}

async function readInput(opts: RunOptions): Promise<unknown> {
  if (opts.input !== undefined && opts.inputFile !== undefined) {
    throw new ValidationError('give --input or --input-file, not both', { path: '--input' });
  }
  const text = opts.inputFile !== undefined ? await readFile(opts.inputFile, 'utf8') : opts.input;
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`${opts.inputFile ? '--input-file' : '--input'} is not valid JSON`, { path: '--input' });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start a run through a running service's API. */
async function runOverHttp(workflowId: string, opts: RunOptions & { key: string; url: string }, input: unknown): Promise<void> {
  const base = opts.url.replace(/\/$/, '');
  const headers = { authorization: `Bearer ${opts.key}`, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) {
      const err = json.error as { code?: string; message?: string } | undefined;
      throw new ValidationError(`${res.status} ${err?.code ?? ''}: ${err?.message ?? 'request failed'}`);
    }
    return json;
  };
  const started = await call('POST', `/v1/workflows/${encodeURIComponent(workflowId)}/runs`, {
    ...(input !== undefined ? { input } : {}),
    ...(opts.clientId ? { clientId: opts.clientId } : {}),
    ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
  });
  if (!opts.wait) {
    process.stdout.write(`${JSON.stringify(started)}\n`);
    return;
  }
  for (;;) {
    const job = await call('GET', `/v1/jobs/${String(started.jobId)}`);
    if ((TERMINAL_STATUSES as readonly string[]).includes(String(job.status))) {
      const stream = await call('GET', `/v1/jobs/${String(started.jobId)}/stream`);
      process.stdout.write(`${JSON.stringify({ job, stream: stream.items }, null, 2)}\n`);
      if (job.status !== 'COMPLETED') process.exitCode = 1;
      return;
    }
    await sleep(200);
  }
}

/**
 * `stepwise run`: with --url it goes through a running service's API; without,
 * straight to the database (and with --wait it runs a worker in this process
 * until the job ends, so an embedded setup needs no server for a quick run).
 */
export async function runWorkflow(config: Config, workflowId: string, opts: RunOptions): Promise<void> {
  const key = requireKey(opts);
  const input = await readInput(opts);
  const url = opts.url ?? process.env.STEPWISE_URL;
  if (url) return runOverHttp(workflowId, { ...opts, key, url }, input);

  const { db, logger, principal } = await openForKey(config, key, `run through it with --url http://${config.host}:${config.port}`);
  try {
    const [run] = await startRuns(db, principal.organizationId, workflowId, [
      { input, clientId: opts.clientId ?? null, idempotencyKey: opts.idempotencyKey ?? null, initiatorType: 'MANUAL' },
    ]);
    if (!opts.wait) {
      process.stdout.write(`${JSON.stringify({ jobId: run!.id, runNumber: run!.runNumber, status: run!.status })}\n`);
      return;
    }
    const blobs = await createBlobStore(config.blob);
    const keyRing = openKeyRing(config, logger);
    const browser = workerBrowserSessions(config, logger);
    const worker = new Worker(db, { ...config.worker, pollIntervalMs: 100 }, logger, undefined, {
      blobs,
      credentials: credentialResolver(db, keyRing),
      sealer: keyRing ? keyRingSealer(keyRing) : undefined,
      browser,
      llmPrices: config.llmPrices,
    });
    await worker.start();
    let job: Job | null;
    try {
      for (;;) {
        job = await findJob(db, principal.organizationId, run!.id);
        if (job && TERMINAL_STATUSES.includes(job.status)) break;
        await sleep(50);
      }
    } finally {
      await worker.stop();
      await browser.close();
    }
    const stream = await listStream(db, principal.organizationId, job, { limit: 5000 });
    // A large result is in blob storage by reference: print it whole, as the API does.
    const { resultStored: _ref, ...full } = await withStoredResult(db, blobs, job);
    process.stdout.write(`${JSON.stringify({ job: full, stream }, null, 2)}\n`);
    if (job.status !== 'COMPLETED') process.exitCode = 1;
  } finally {
    await db.close();
  }
}
