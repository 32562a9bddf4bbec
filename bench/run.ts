/**
 * Benchmark entry point: `npm run -s bench -- <scenario> [--jobs N] [--runs N] [--warmup N] [--stats MODE]`
 * (`scale` takes its own options, see bench/scale.ts).
 * Results are JSON lines on stdout; progress goes to stderr.
 */
import { backup, BACKUP_USAGE } from './backup.js';
import { bytes } from './bytes.js';
import { dashboard, DASHBOARD_USAGE } from './dashboard.js';
import { BenchUsageError, databaseFlag, eachFlag, intFlag, unknownFlag, datasetFlag } from './flags.js';
import { log, STATS_MODES, type BenchOptions, type StatsMode } from './lib.js';
import { recordFloor } from './record-floor.js';
import { retrievalBytes } from './retrieval-bytes.js';
import { scale, SCALE_USAGE } from './scale.js';
import { scaleOut, SCALE_OUT_USAGE } from './scale-out.js';
import { soak, SOAK_USAGE } from './soak.js';
import { steps } from './steps.js';
import { foreach } from './foreach.js';
import { latency, LATENCY_USAGE } from './latency.js';
import { storage } from './storage.js';
import { throughput } from './throughput.js';

// A Map, not an object literal: `bench -- toString` must be an unknown scenario.
const SCENARIOS = new Map<string, (opts: BenchOptions) => Promise<void>>([
  ['throughput', throughput],
  ['record-floor', recordFloor],
  ['steps', steps],
  ['foreach', foreach],
  ['storage', storage],
  ['retrieval-bytes', retrievalBytes],
  ['bytes', bytes],
  // Loaded on use: playwright-core stays out of the other scenarios' process.
  ['browser', async (opts) => (await import('./browser.js')).browser(opts)],
]);

/** Scenarios that parse their own options. */
const OWN_OPTION_SCENARIOS = new Map<string, (args: string[]) => Promise<void>>([
  ['scale', scale],
  ['scale-out', scaleOut],
  ['dashboard', dashboard],
  ['backup', backup],
  ['latency', latency],
  ['soak', soak],
]);

const USAGE = `usage: npm run -s bench -- <scenario> [--jobs N] [--warmup N] [--stats ${STATS_MODES.join('|')}]
       npm run -s bench -- storage [--months N] [--jobs-per-month N] [--rows-per-job N] | [--database KEPT_SCALE_DATASET]
       npm run -s bench -- browser [--runs N] [--warmup N] [--stats ${STATS_MODES.join('|')}]
scenarios: ${[...SCENARIOS.keys(), ...OWN_OPTION_SCENARIOS.keys()].join(', ')}
${SCALE_USAGE}
${SCALE_OUT_USAGE}
${DASHBOARD_USAGE}
${BACKUP_USAGE}
${LATENCY_USAGE}
${SOAK_USAGE}`;

function isStatsMode(value: string | undefined): value is StatsMode {
  return STATS_MODES.some((m) => m === value);
}

function parseOptions(args: string[]): BenchOptions {
  const opts: BenchOptions = { jobs: 20_000, warmup: 500, stats: 'vacuum-analyze' };
  eachFlag(args, (flag, value, arg) => {
    if (datasetFlag(opts, flag, value, { months: 2, rowsPerJob: 3 })) return;
    switch (flag) {
      case '--jobs':
        opts.jobs = intFlag(flag, value(), 1);
        break;
      case '--runs':
        opts.runs = intFlag(flag, value(), 1);
        break;
      case '--warmup':
        opts.warmup = intFlag(flag, value(), 0);
        break;
      case '--database':
        opts.database = databaseFlag(flag, value());
        break;
      case '--stats': {
        const mode = value();
        if (!isStatsMode(mode)) throw new BenchUsageError(`--stats needs one of ${STATS_MODES.join(', ')}, got "${mode ?? ''}"`);
        opts.stats = mode;
        break;
      }
      default:
        unknownFlag(arg);
    }
  });
  return opts;
}

async function main(argv: string[]): Promise<number> {
  const name = argv[0];
  const own = name === undefined ? undefined : OWN_OPTION_SCENARIOS.get(name);
  if (own) {
    try {
      await own(argv.slice(1));
      return 0;
    } catch (err) {
      if (err instanceof BenchUsageError) {
        process.stderr.write(`${err.message}\n${USAGE}\n`);
        return 2;
      }
      log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return 1;
    }
  }
  const scenario = name === undefined ? undefined : SCENARIOS.get(name);
  if (!scenario) {
    process.stderr.write(`${name === undefined ? 'no scenario given' : `unknown scenario "${name}"`}\n${USAGE}\n`);
    return 2;
  }
  let opts: BenchOptions;
  try {
    opts = parseOptions(argv.slice(1));
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    return 2;
  }
  try {
    await scenario(opts);
    return 0;
  } catch (err) {
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}

// Exit explicitly: a peer's timers or pools must not keep a finished (or failed) bench alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
