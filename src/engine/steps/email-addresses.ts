import addressparser from 'nodemailer/lib/addressparser';
import { truncate } from '../../util/json.js';
import { StepError } from './types.js';

/** Most recipients (to + cc + bcc) one email step sends to; a mailing list is another product. */
export const MAX_RECIPIENTS = 100;

/** One mailbox: the display name may be empty. */
export interface Mailbox {
  name: string;
  address: string;
}

// A simple check, not RFC 5322: a local part without spaces, quotes, brackets
// or separators, an @, and a domain of dot-separated labels (or an [IP]
// literal). It refuses what would break the header or the envelope (a CR/LF,
// a second @, a comma that split wrongly) and lets the server judge the rest.
const LOCAL_RE = /^[^\s"(),:;<>@[\\\]]{1,64}$/;
const DOMAIN_RE = /^(?:[A-Za-z0-9\u0080-\uFFFF](?:[A-Za-z0-9\u0080-\uFFFF-]{0,61}[A-Za-z0-9\u0080-\uFFFF])?\.)*[A-Za-z0-9\u0080-\uFFFF](?:[A-Za-z0-9\u0080-\uFFFF-]{0,61}[A-Za-z0-9\u0080-\uFFFF])?$|^\[[0-9A-Fa-f:.]{2,45}\]$/;

/** True when `address` (no display name) looks like local@domain. */
export function isPlausibleAddress(address: string): boolean {
  if (address.length > 254) return false;
  const at = address.lastIndexOf('@');
  if (at <= 0) return false;
  return LOCAL_RE.test(address.slice(0, at)) && DOMAIN_RE.test(address.slice(at + 1));
}

function badAddress(field: string, message: string, value: string): StepError {
  return new StepError('EMAIL_BAD_ADDRESS', `${field}: ${message}`, { field, value: truncate(value, 200) });
}

/**
 * The mailboxes of one rendered address field. A template may render to a
 * comma-separated string (`"Ann <ann@x.org>, bob@x.org"`, a quoted name may
 * hold a comma) or to an array of such strings; `null`/empty renders to none.
 * Throws EMAIL_BAD_ADDRESS naming the field for anything else.
 */
export function parseMailboxes(field: string, rendered: unknown): Mailbox[] {
  const parts = Array.isArray(rendered) ? rendered.flat(1) : [rendered];
  const out: Mailbox[] = [];
  for (const part of parts) {
    if (part === null || part === undefined) continue;
    if (typeof part !== 'string') throw badAddress(field, `a recipient must be text, got ${typeof part}`, JSON.stringify(part) ?? '');
    if (/[\r\n]/.test(part)) throw badAddress(field, 'a recipient may not hold a line break', part);
    if (part.trim() === '') continue;
    for (const entry of addressparser(part, { flatten: true })) {
      const address = (entry.address ?? '').trim();
      const name = entry.name ?? '';
      // addressparser takes text without an @ for a display name ("bob" → name bob, no address).
      const shown = address || name || part;
      if (!isPlausibleAddress(address)) throw badAddress(field, `"${truncate(shown, 200)}" is not an email address`, shown);
      // "ann@x.org bob@x.org" parses as bob@x.org named "ann@x.org": refuse rather than drop one.
      if (name.includes('@') && !part.includes('"')) {
        throw badAddress(field, `"${truncate(name, 200)} ${address}" looks like two addresses; separate them with commas`, part);
      }
      out.push({ name, address });
    }
  }
  return out;
}

/** The one sender mailbox of a credential's `from` ("Ops <ops@acme.com>" or "ops@acme.com"). */
export function parseSender(from: string): Mailbox {
  const boxes = parseMailboxes('credential.from', from);
  if (boxes.length !== 1) throw badAddress('credential.from', `needs exactly one address, got ${boxes.length}`, from);
  return boxes[0]!;
}
