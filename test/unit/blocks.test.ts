import { describe, expect, it } from 'vitest';
import { JobAbort } from '../../src/engine/aborts.js';
import { toleratedOf } from '../../src/engine/blocks/for-each.js';
import { truthy } from '../../src/engine/blocks/lists.js';
import { validateDefinition } from '../../src/engine/definition/index.js';
import { executeJob, type ExecutorOptions } from '../../src/engine/executor.js';
import { LIMITS } from '../../src/engine/limits.js';
import type { Definition } from '../../src/engine/steps/registry.js';
import { kindName, type ClaimedJob } from '../../src/store/index.js';
import { MemorySink } from '../helpers/memory-sink.js';
import { claimedJob } from '../helpers/claimed-job.js';
import { Outbound } from '../../src/net/outbound.js';

function claimed(overrides: Partial<ClaimedJob> = {}): ClaimedJob {
  return claimedJob({ input: { n: 3 }, runNumber: 1, ...overrides });
}

const options: ExecutorOptions = { stepTimeoutMs: 1_000, httpMaxResponseBytes: 1_024, outbound: new Outbound(), checkpointTtlMs: 60_000, findSignal: async () => null };

async function execute(definition: unknown, overrides: Partial<ClaimedJob> = {}): Promise<MemorySink> {
  const sink = new MemorySink();
  await executeJob(claimed(overrides), validateDefinition(definition) as Definition, sink, new JobAbort(), options);
  return sink;
}

describe('blocks without a database', () => {
  it('a step inside a block sees its own list first, then the enclosing ones', async () => {
    const sink = await execute({
      steps: [
        { id: 'x', type: 'transform', expression: '"outer"' },
        { id: 'y', type: 'transform', expression: '"outer y"' },
        {
          id: 'b',
          type: 'if',
          condition: 'true',
          then: [
            { id: 'x', type: 'transform', expression: '"inner"' },
            { id: 'seen', type: 'transform', expression: '[steps.x, steps.y]' },
          ],
        },
      ],
    });
    expect(sink.completions[0]).toMatchObject({ status: 'COMPLETED', result: { branch: 'then', output: ['inner', 'outer y'] } });
  });

  it('quiet iterations write nothing of their own, unless they fail: then all their rows, in order', async () => {
    const sink = await execute({
      steps: [
        {
          id: 'inv',
          type: 'forEach',
          items: '[0..149]',
          toleratedFailures: 5,
          steps: [
            { id: 'a', type: 'log', message: 'item {{ item }}' },
            { id: 'b', type: 'transform', expression: 'item = 120 ? $error("bad 120") : item' },
          ],
        },
      ],
    });
    expect(sink.completions[0]!.status).toBe('PARTIAL_SUCCESS');
    const rows = sink.rows.map((r) => ({ kind: kindName(r.kind), path: r.path ?? null, message: r.message }));
    // Iterations 100–149 are quiet: only the failed one (120) left rows, with its log line.
    expect(rows.filter((r) => r.path?.startsWith('inv[12')).map((r) => r.path)).toEqual(
      expect.arrayContaining(['inv[12].a', 'inv[12].b']),
    );
    const quiet = rows.filter((r) => /^inv\[1[0-4]\d\]/.test(r.path ?? ''));
    expect(new Set(quiet.map((r) => r.path!.split('.')[0]))).toEqual(new Set(['inv[120]']));
    expect(quiet.map((r) => r.kind)).toEqual(['STEP_STARTED', 'LOG', 'STEP_COMPLETED', 'STEP_STARTED', 'STEP_FAILED', 'ITERATION_FAILED']);
    expect(sink.rows.map((r) => r.seq)).toEqual(sink.rows.map((_, i) => i + 1));
    const lastProgress = sink.rows.filter((r) => kindName(r.kind) === 'MAP_PROGRESS').at(-1)!;
    expect(lastProgress.data).toEqual({ total: 150, succeeded: 149, failed: 1, running: 0 });
  });

  it('past the stream row cap a job keeps running and keeps its outcome, without per-step rows', async () => {
    const sink = await execute({ steps: [{ id: 'n', type: 'noop' }, { id: 'last', type: 'transform', expression: '"done"' }] }, { lastSeq: LIMITS.streamRowsPerJob - 1 });
    const kinds = sink.rows.map((r) => kindName(r.kind));
    expect(kinds[0]).toBe('JOB_STARTED');
    expect(kinds).toContain('LOG');
    expect(kinds).not.toContain('STEP_STARTED');
    expect(kinds.at(-1)).toBe('JOB_COMPLETED');
    expect(sink.completions[0]).toMatchObject({ status: 'COMPLETED', result: 'done' });
  });

  it('a parallel branch that waits suspends the job once the other branches are done', async () => {
    const sink = await execute({
      steps: [
        {
          id: 'p',
          type: 'parallel',
          branches: { waits: [{ id: 'w', type: 'wait', signal: 'go' }], runs: [{ id: 'r', type: 'transform', expression: '1' }] },
        },
      ],
    });
    expect(sink.suspensions).toEqual([expect.objectContaining({ status: 'WAITING' })]);
    expect(sink.results.get('p.runs')).toMatchObject({ status: 'COMPLETED', output: 1 });
    expect(sink.results.get('p.waits.w')).toMatchObject({ status: 'SUSPENDED' });
  });
});

describe('loop and condition rules', () => {
  it('tolerated failures: a count or a share of the items, rounded down', () => {
    expect(toleratedOf(undefined, 100)).toBe(0);
    expect(toleratedOf(3, 100)).toBe(3);
    expect(toleratedOf('10%', 95)).toBe(9);
    expect(toleratedOf('100%', 7)).toBe(7);
  });

  it('JSONata truth: empty arrays and objects, 0 and "" are false', () => {
    for (const v of [false, null, undefined, 0, '', NaN, [], {}, [0, '']]) expect(truthy(v)).toBe(false);
    for (const v of [true, 1, 'x', [0, 1], { a: 1 }]) expect(truthy(v)).toBe(true);
  });
});
