import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import { importChromeRecording } from '../engine/recorder-import.js';
import { ValidationError } from '../errors/index.js';
import { workflowView } from '../read/index.js';
import { assertAllowed } from '../security/index.js';
import { withOrg, type KeyOption } from './context.js';

interface ImportOptions extends KeyOption {
  chromeRecorder: string;
  name?: string;
  allowOrigin?: string[];
}

async function readRecording(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ValidationError(`--chrome-recorder: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { path: '--chrome-recorder' });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError(`--chrome-recorder: ${file} is not JSON`, { path: '--chrome-recorder' });
  }
}

/** `stepwise workflow …`: workflows from outside sources. */
export function workflowCommands(program: Command, config: (cmd: Command) => Config): void {
  const workflow = program.command('workflow').description('workflows');
  workflow
    .command('import')
    .description('create a workflow of one browser step from a Chrome DevTools Recorder export, and print it')
    .requiredOption('--chrome-recorder <file>', 'the Recorder export (JSON)')
    .option('--name <name>', "the workflow's name (default: the recording's title)")
    .option('--allow-origin <origin...>', 'origins the browser may reach (default: those the recording navigates to)')
    .option('-k, --key <key>', 'API key (default: STEPWISE_API_KEY)')
    .action(async (opts: ImportOptions, cmd: Command) => {
      const recording = await readRecording(opts.chromeRecorder);
      await withOrg(config(cmd), opts, '/v1/workflows/import/chrome-recorder', async (db, principal) => {
        assertAllowed(principal.role, 'workflows.manage');
        return workflowView(await importChromeRecording(db, principal.organizationId, { name: opts.name, recording, allowOrigins: opts.allowOrigin }));
      });
    });
}
