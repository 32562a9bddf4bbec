import type { Sealer } from '../engine/services.js';
import { DecryptError, type KeyRing } from './crypto.js';

/** The binary form's first bytes: `SWS1`, then key id length (1 byte), key id, iv (12), tag (16), ciphertext. */
const MAGIC = Buffer.from('SWS1', 'latin1');
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals values a worker keeps for a while but must not keep readable (a
 * browser session's cookies and storage in a checkpoint, a trace holding
 * typed values): AES-256-GCM with the credential key ring, bound to what it
 * belongs to by the associated data (a browser state to its organization and
 * session name, a trace to its job), so a sealed value copied elsewhere
 * fails to open. The text form is `keyId.iv.tag.ciphertext` (base64url).
 * `open` throws DecryptError when the text was tampered with, moved, or
 * sealed with a key no longer in the ring.
 */
export function keyRingSealer(ring: KeyRing): Sealer {
  return {
    seal(value, associatedData) {
      const s = ring.sealJson(value, associatedData);
      return [s.keyId, s.iv.toString('base64url'), s.tag.toString('base64url'), s.ciphertext.toString('base64url')].join('.');
    },
    open(text, associatedData) {
      const [keyId = '', iv = '', tag = '', ciphertext = ''] = text.split('.');
      return ring.openJson(
        { keyId, iv: Buffer.from(iv, 'base64url'), tag: Buffer.from(tag, 'base64url'), ciphertext: Buffer.from(ciphertext, 'base64url') },
        associatedData,
      );
    },
    sealBytes(bytes, associatedData) {
      const s = ring.seal(bytes, associatedData);
      const keyId = Buffer.from(s.keyId, 'utf8');
      if (keyId.length > 255) throw new DecryptError('key id longer than 255 bytes');
      return Buffer.concat([MAGIC, Buffer.from([keyId.length]), keyId, s.iv, s.tag, s.ciphertext]);
    },
    openBytes(sealed, associatedData) {
      if (sealed.length < MAGIC.length + 1 || !sealed.subarray(0, MAGIC.length).equals(MAGIC)) throw new DecryptError('not a sealed value');
      const idLength = sealed[MAGIC.length]!;
      let at = MAGIC.length + 1;
      const keyId = sealed.toString('utf8', at, at + idLength);
      at += idLength;
      const iv = sealed.subarray(at, at + IV_BYTES);
      const tag = sealed.subarray(at + IV_BYTES, at + IV_BYTES + TAG_BYTES);
      if (tag.length !== TAG_BYTES) throw new DecryptError('sealed value cut short');
      return ring.open({ keyId, iv, tag, ciphertext: sealed.subarray(at + IV_BYTES + TAG_BYTES) }, associatedData);
    },
  };
}
