import type { Db } from '../db/index.js';
import { ValidationError } from '../errors/index.js';
import { parseRecorderExport } from '../browser/recorder-schema.js';
import type { Workflow } from '../store/index.js';
import { defineWorkflow } from './service.js';

export interface RecordingImport {
  /** The workflow's name; default the recording's title. */
  name?: string | undefined;
  /** A Chrome DevTools Recorder export (`{ "title", "steps": [...] }`). */
  recording: unknown;
  /** Origins the browser may reach; default the origins the recording navigates to. */
  allowOrigins?: string[] | undefined;
}

/** Prefix a validation error's path with where the recording sits in the request (`/recording/steps/3/selectors`). */
function underRecording(err: unknown): unknown {
  if (!(err instanceof ValidationError)) return err;
  const inner = typeof err.details.path === 'string' ? err.details.path : '';
  const path = `/recording${inner}`;
  return new ValidationError(err.message.startsWith(inner) && inner ? `${path}${err.message.slice(inner.length)}` : `${path}: ${err.message}`, { ...err.details, path });
}

/**
 * A workflow of one browser step from a Chrome DevTools Recorder export: its
 * steps become the step's actions (checked like any definition: an invalid
 * export is a 400 naming the step index and field), its navigations' origins
 * the allowed origins unless given.
 */
export async function importChromeRecording(db: Db, organizationId: string, input: RecordingImport): Promise<Workflow> {
  let parsed: ReturnType<typeof parseRecorderExport>;
  try {
    parsed = parseRecorderExport(input.recording);
  } catch (err) {
    throw underRecording(err);
  }
  const allowOrigins = input.allowOrigins ?? [
    ...new Set(parsed.actions.flatMap((a) => (a.type === 'navigate' && a.url ? [new URL(a.url).origin] : []))),
  ];
  if (allowOrigins.length === 0) {
    throw new ValidationError('/allowOrigins is required: the recording navigates nowhere, so no origin can be taken from it', { path: '/allowOrigins' });
  }
  const name = input.name ?? parsed.title ?? 'Chrome recording';
  return defineWorkflow(db, organizationId, {
    name,
    definition: { steps: [{ id: 'browser', type: 'browser', allowOrigins, actions: parsed.actions }] },
  });
}
