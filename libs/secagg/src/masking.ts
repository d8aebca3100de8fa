import { SecAggError } from './errors.js';
import { PROTOCOL_LABEL, concatBytes, hkdf, u32be } from './key-agreement.js';
import { SHARE_PLAINTEXT_BYTES } from './messages.js';
import { SHAMIR_ELEMENT_BYTES } from './shamir.js';
import { WIRE_VERSION } from './wire.js';

/**
 * The masking rule shared by clients and server (Bonawitz et al. 2017, Sec. 3-4): client u's
 * masked input is y_u = x_u + PRG(b_u) + sum over neighbours v of sign(u, v) PRG(s_uv), with
 * sign +1 if u < v and -1 otherwise, so every pairwise mask cancels in the sum of two survivors.
 * Keys come from HKDF over the secret, salted with the session id and labelled with the purpose
 * and the party ids, so a key never serves two purposes, two pairs or two sessions.
 */

/** Mask key for the pair (u, v) from their X25519 shared secret. */
export function pairMaskKey(sharedSecret: Uint8Array, session: Uint8Array, u: number, v: number): Uint8Array {
  return hkdf(sharedSecret, session, concatBytes(`${PROTOCOL_LABEL}/pair-mask`, u32be(Math.min(u, v)), u32be(Math.max(u, v))));
}

/** Self-mask key of client u from its seed b_u. */
export function selfMaskKey(seed: Uint8Array, session: Uint8Array, u: number): Uint8Array {
  return hkdf(seed, session, concatBytes(`${PROTOCOL_LABEL}/self-mask`, u32be(u)));
}

/** The sign with which `owner` adds the pairwise mask it shares with `other`. */
export function pairSign(owner: number, other: number): 1 | -1 {
  return owner < other ? 1 : -1;
}

/** The plaintext sealed to each neighbour: both shares, bound to round, session and the two parties. */
export type SharePlaintext = { round: number; session: Uint8Array; from: number; to: number; sShare: Uint8Array; bShare: Uint8Array };

/** Serializes a share plaintext (fixed length). */
export function encodeSharePlaintext(p: SharePlaintext): Uint8Array {
  return concatBytes(new Uint8Array([WIRE_VERSION]), u32be(p.round), p.session, u32be(p.from), u32be(p.to), p.sShare, p.bShare);
}

/** Parses a share plaintext; SecAggError('decrypt') if its length or version is wrong. */
export function decodeSharePlaintext(bytes: Uint8Array): SharePlaintext {
  if (bytes.length !== SHARE_PLAINTEXT_BYTES || bytes[0] !== WIRE_VERSION) {
    throw new SecAggError('decrypt', `share plaintext has ${bytes.length} bytes or an unknown version`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const e = SHAMIR_ELEMENT_BYTES;
  return {
    round: dv.getUint32(1),
    session: bytes.slice(5, 37),
    from: dv.getUint32(37),
    to: dv.getUint32(41),
    sShare: bytes.slice(45, 45 + e),
    bShare: bytes.slice(45 + e, 45 + 2 * e),
  };
}

/** Shamir x-coordinate of the share held by client `id` (ids start at 0, x must be >= 1). */
export function shareX(id: number): number {
  return id + 1;
}
