import { truncate } from '../../util/json.js';
import { renderString, renderTemplates } from '../definition/expressions.js';
import { StepError, type StepContext } from './types.js';

/** Most attachments one email carries. */
export const MAX_ATTACHMENTS = 20;
/**
 * Most bytes of content one email carries: text, html and attachments
 * together, before MIME encoding. It bounds what the worker holds in memory
 * for one step, and equals LIMITS.artifactBytes, so any one stored artifact
 * fits alone. Base64 makes 20 MiB about 27 MiB on the wire: a provider's own
 * per-message limit (often 25 MB) may refuse the largest with a 552, which
 * the step reports as EMAIL_REJECTED.
 */
export const MAX_EMAIL_BYTES = 20 * 1024 * 1024;

/** An attachment taken from blob storage: a screenshot, a downloaded file, an artifact a step captured. */
export interface ArtifactAttachment {
  /** Template rendering to the artifact's (screenshot's) id. */
  artifact: string;
  /** File name; default the artifact's name, with an extension from its content type. */
  name?: string;
  /** Overrides the stored content type. */
  contentType?: string;
}

/** An attachment made from a value: a template string, or any JSON value sent as JSON. */
export interface InlineAttachment {
  name: string;
  content: unknown;
  contentType?: string;
}

export type EmailAttachment = ArtifactAttachment | InlineAttachment;

/** One attachment ready for the message. */
export interface ResolvedAttachment {
  filename: string;
  content: Buffer;
  contentType: string;
}

/** Counts the message's bytes against MAX_EMAIL_BYTES; fails EMAIL_TOO_LARGE at the first part that passes it. */
export class ByteBudget {
  private used = 0;

  add(bytes: number, part: string): void {
    this.used += bytes;
    if (this.used > MAX_EMAIL_BYTES) {
      throw new StepError('EMAIL_TOO_LARGE', `the email reaches ${this.used} bytes at ${part}; at most ${MAX_EMAIL_BYTES} (text, html and attachments together)`, {
        bytes: this.used,
        limit: MAX_EMAIL_BYTES,
        part,
      });
    }
  }
}

const EXTENSIONS: Record<string, string> = {
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/gif': '.gif',
  'image/webp': '.webp',
  'image/svg+xml': '.svg',
  'application/pdf': '.pdf',
  'application/json': '.json',
  'application/zip': '.zip',
  'text/csv': '.csv',
  'text/plain': '.txt',
  'text/html': '.html',
};

const TYPES_BY_EXTENSION: Record<string, string> = Object.fromEntries(Object.entries(EXTENSIONS).map(([type, ext]) => [ext, type]));

/** A file name safe for a MIME header: no path separators or control characters, at most 200 characters. */
function safeFilename(name: string, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]+/g, '_').trim();
  return cleaned === '' ? fallback : truncate(cleaned, 200);
}

function withExtension(name: string, contentType: string): string {
  if (/\.[A-Za-z0-9]{1,8}$/.test(name)) return name;
  return name + (EXTENSIONS[contentType.split(';')[0]!.trim()] ?? '');
}

/** text/* parts are sent as UTF-8 and say so, or a reader guesses the charset. */
function withCharset(contentType: string): string {
  return contentType.startsWith('text/') && !contentType.includes('charset') ? `${contentType}; charset=utf-8` : contentType;
}

function isArtifact(a: EmailAttachment): a is ArtifactAttachment {
  return 'artifact' in a;
}

/**
 * Render and load the step's attachments in order, each counted against the
 * budget as soon as it is read: a list of large artifacts fails at the first
 * one past the limit instead of holding them all in memory.
 */
export async function resolveAttachments(
  attachments: readonly EmailAttachment[],
  ctx: StepContext,
  where: string,
  budget: ByteBudget,
): Promise<ResolvedAttachment[]> {
  const out: ResolvedAttachment[] = [];
  for (const [i, spec] of attachments.entries()) {
    const at = `${where}.attachments[${i}]`;
    const resolved = isArtifact(spec) ? await fromArtifact(spec, ctx, at, i) : await inline(spec, ctx, at, i);
    budget.add(resolved.content.length, `attachments[${i}]`);
    out.push(resolved);
  }
  return out;
}

async function fromArtifact(spec: ArtifactAttachment, ctx: StepContext, at: string, i: number): Promise<ResolvedAttachment> {
  const id = (await renderString(spec.artifact, ctx.scope, `${at}.artifact`)).trim();
  const artifacts = ctx.services.artifacts;
  if (!artifacts) throw new StepError('SERVICE_UNAVAILABLE', 'attachments from blob storage need a blob store, and this worker has none', { service: 'artifacts' });
  const notFound = () =>
    new StepError('EMAIL_ATTACHMENT_NOT_FOUND', `attachments[${i}]: artifact "${truncate(id, 100)}" does not exist in this organization`, {
      attachment: i,
      artifactId: truncate(id, 100),
    });
  if (id === '') throw notFound();
  let stored: { bytes: Buffer; name: string; contentType: string };
  try {
    stored = await artifacts.read(ctx.job.organizationId, id);
  } catch (err) {
    if (err instanceof StepError && err.code === 'ARTIFACT_NOT_FOUND') throw notFound();
    throw err; // the blob store failing is not the artifact missing
  }
  const contentType = spec.contentType ?? stored.contentType;
  const name = spec.name === undefined ? withExtension(stored.name, contentType) : await renderString(spec.name, ctx.scope, `${at}.name`);
  return { filename: safeFilename(name, `attachment-${i + 1}`), content: stored.bytes, contentType: withCharset(contentType) };
}

async function inline(spec: InlineAttachment, ctx: StepContext, at: string, i: number): Promise<ResolvedAttachment> {
  const filename = safeFilename(await renderString(spec.name, ctx.scope, `${at}.name`), `attachment-${i + 1}`);
  const value = await renderTemplates(spec.content, ctx.scope, `${at}.content`);
  const text = typeof value === 'string';
  const content = Buffer.from(text ? value : (JSON.stringify(value) ?? 'null'), 'utf8');
  const extension = /\.[A-Za-z0-9]{1,8}$/.exec(filename)?.[0]?.toLowerCase();
  // A string is sent as the file its name says (report.csv is text/csv); any other value is JSON.
  const guessed = text ? (extension ? TYPES_BY_EXTENSION[extension] : undefined) ?? 'text/plain' : 'application/json';
  return { filename, content, contentType: withCharset(spec.contentType ?? guessed) };
}
