import { SecAggError } from './errors.js';
import { SHAMIR_ELEMENT_BYTES } from './shamir.js';
import { WIRE_VERSION, array, b64, frameJson, idList, int, readHeader, readJsonBody, record, unb64 } from './wire.js';

/**
 * Every SecAgg+ message as plain data, with a strict deterministic serializer and parser each.
 * Control messages are [version][type][canonical JSON with base64 fields]. Two are binary: the
 * masked-input chunks, the bulkiest, [version][type][round u32][session 32][sender u32]
 * [offset u32][words little-endian u32...], and the key list, the only control message that
 * grows with the cohort and that every client parses whole, [version][type][round u32][count u32]
 * then per entry [clientId u32][cPk 32][sPk 32][bCommit 32][sig 64] (big-endian integers): at a
 * cohort of 1,000, JSON and base64 made each client's parse cost more than its own key agreement.
 * Parsers check every field's type and length; the
 * protocol layer then checks stage, round, session and sender.
 */

/**
 * The protocol stages, in order (Bonawitz et al. 2017 rounds 0-4), with one addition: 'receipt',
 * between share and collect, where every client opens the shares addressed to it and reports the
 * senders whose ciphertext it could not open. The server then removes those senders (and anyone
 * who sent no receipt) before anyone masks, and tells everyone the set to mask with: an invalid
 * share ciphertext makes its sender drop out of the round, never makes the receiver abort.
 */
export const STAGES = ['advertise', 'share', 'receipt', 'collect', 'consistency', 'unmask'] as const;
/** One protocol stage. */
export type Stage = (typeof STAGES)[number];

/** Bytes of a share plaintext inside its box: version, round, session, from, to, s-share, b-share. */
export const SHARE_PLAINTEXT_BYTES = 1 + 4 + 32 + 4 + 4 + 2 * SHAMIR_ELEMENT_BYTES;
/** Bytes of a sealed share: 24-byte nonce + plaintext + 16-byte Poly1305 tag. */
export const SEALED_SHARE_BYTES = 24 + SHARE_PLAINTEXT_BYTES + 16;

// ---- server -> client ----

/** Stage advertise: the round's public configuration. */
export type RoundConfigMsg = { type: 'config'; round: number; cohort: number[]; k: number; t: number; dim: number; graphSeed: Uint8Array };
/** One signed key advertisement. */
export type SignedKeys = { clientId: number; cPk: Uint8Array; sPk: Uint8Array; bCommit: Uint8Array; sig: Uint8Array };
/** Stage share: every advertised key set (the session id is computed over all of them). */
export type KeyListMsg = { type: 'keys'; round: number; keys: SignedKeys[] };
/** Stage receipt: the sealed shares addressed to this client. */
export type ShareDeliveryMsg = { type: 'shares'; round: number; session: Uint8Array; shares: Array<{ from: number; ct: Uint8Array }> };
/** Stage collect: the clients whose inputs may enter the sum; each masks with its neighbours among them. */
export type MaskPeersMsg = { type: 'peers'; round: number; session: Uint8Array; peers: number[] };
/** Stage consistency: the survivor set the client is asked to sign. */
export type SurvivorsMsg = { type: 'survivors'; round: number; session: Uint8Array; survivors: number[] };
/** Stage unmask: who is alive and who dropped, with the neighbours' consistency signatures. */
export type UnmaskRequestMsg = {
  type: 'unmask';
  round: number;
  session: Uint8Array;
  alive: number[];
  dropped: number[];
  signatures: Array<{ clientId: number; sig: Uint8Array }>;
};
/** The round was aborted; `check` names the failed check. */
export type AbortMsg = { type: 'abort'; round: number; check: string; reason: string };
/** Any server message. */
export type ServerMsg = RoundConfigMsg | KeyListMsg | ShareDeliveryMsg | MaskPeersMsg | SurvivorsMsg | UnmaskRequestMsg | AbortMsg;

// ---- client -> server ----

/** Stage advertise: two X25519 public keys and a commitment to the self-mask seed, signed. */
export type AdvertiseMsg = { type: 'advertise'; round: number; sender: number; cPk: Uint8Array; sPk: Uint8Array; bCommit: Uint8Array; sig: Uint8Array };
/** Stage share: one sealed share pair per neighbour. */
export type ShareKeysMsg = { type: 'share'; round: number; session: Uint8Array; sender: number; shares: Array<{ to: number; ct: Uint8Array }> };
/** Stage receipt: the neighbours whose share ciphertext this client could not open (they drop out). */
export type ReceiptMsg = { type: 'receipt'; round: number; session: Uint8Array; sender: number; rejected: number[] };
/** Stage collect: a slice of the masked input. */
export type MaskedChunkMsg = { type: 'chunk'; round: number; session: Uint8Array; sender: number; offset: number; words: Uint32Array };
/** Stage consistency: the signature on the survivor set. */
export type ConsistencyMsg = { type: 'consistency'; round: number; session: Uint8Array; sender: number; sig: Uint8Array };
/** Stage unmask: for each neighbour exactly one share, its self-mask share (alive) or key share (dropped). */
export type UnmaskSharesMsg = {
  type: 'unmask-shares';
  round: number;
  session: Uint8Array;
  sender: number;
  bShares: Array<{ of: number; y: Uint8Array }>;
  sShares: Array<{ of: number; y: Uint8Array }>;
};
/** Any client message. */
export type ClientMsg = AdvertiseMsg | ShareKeysMsg | ReceiptMsg | MaskedChunkMsg | ConsistencyMsg | UnmaskSharesMsg;

/** The stage each client message belongs to. */
export const CLIENT_MSG_STAGE: Record<ClientMsg['type'], Stage> = {
  advertise: 'advertise',
  share: 'share',
  receipt: 'receipt',
  chunk: 'collect',
  consistency: 'consistency',
  'unmask-shares': 'unmask',
};

const CODES = { config: 0x10, keys: 0x11, shares: 0x12, survivors: 0x13, unmask: 0x14, peers: 0x15, abort: 0x1f, advertise: 0x01, share: 0x02, chunk: 0x03, consistency: 0x04, 'unmask-shares': 0x05, receipt: 0x06 } as const;
const NAMES = new Map<number, keyof typeof CODES>(Object.entries(CODES).map(([k, v]) => [v, k as keyof typeof CODES]));

const shareY = (v: unknown, what: string) => unb64(v, what, SHAMIR_ELEMENT_BYTES);

/** Serializes any message deterministically. */
export function encodeMessage(m: ServerMsg | ClientMsg): Uint8Array {
  switch (m.type) {
    case 'config':
      return frameJson(CODES.config, { round: m.round, cohort: m.cohort, k: m.k, t: m.t, dim: m.dim, graphSeed: b64(m.graphSeed) });
    case 'keys':
      return encodeKeyList(m);
    case 'shares':
      return frameJson(CODES.shares, { round: m.round, session: b64(m.session), shares: m.shares.map((s) => ({ from: s.from, ct: b64(s.ct) })) });
    case 'peers':
      return frameJson(CODES.peers, { round: m.round, session: b64(m.session), peers: m.peers });
    case 'receipt':
      return frameJson(CODES.receipt, { round: m.round, session: b64(m.session), sender: m.sender, rejected: m.rejected });
    case 'survivors':
      return frameJson(CODES.survivors, { round: m.round, session: b64(m.session), survivors: m.survivors });
    case 'unmask':
      return frameJson(CODES.unmask, {
        round: m.round,
        session: b64(m.session),
        alive: m.alive,
        dropped: m.dropped,
        signatures: m.signatures.map((s) => ({ clientId: s.clientId, sig: b64(s.sig) })),
      });
    case 'abort':
      return frameJson(CODES.abort, { round: m.round, check: m.check, reason: m.reason });
    case 'advertise':
      return frameJson(CODES.advertise, { round: m.round, sender: m.sender, cPk: b64(m.cPk), sPk: b64(m.sPk), bCommit: b64(m.bCommit), sig: b64(m.sig) });
    case 'share':
      return frameJson(CODES.share, { round: m.round, session: b64(m.session), sender: m.sender, shares: m.shares.map((s) => ({ to: s.to, ct: b64(s.ct) })) });
    case 'chunk':
      return encodeChunk(m);
    case 'consistency':
      return frameJson(CODES.consistency, { round: m.round, session: b64(m.session), sender: m.sender, sig: b64(m.sig) });
    case 'unmask-shares':
      return frameJson(CODES['unmask-shares'], {
        round: m.round,
        session: b64(m.session),
        sender: m.sender,
        bShares: m.bShares.map((s) => ({ of: s.of, y: b64(s.y) })),
        sShares: m.sShares.map((s) => ({ of: s.of, y: b64(s.y) })),
      });
  }
}

const KEYS_HEADER = 2 + 4 + 4;
const KEY_ENTRY = 4 + 32 + 32 + 32 + 64;
const KEY_FIELDS = [['cPk', 32], ['sPk', 32], ['bCommit', 32], ['sig', 64]] as const;

function encodeKeyList(m: KeyListMsg): Uint8Array {
  const out = new Uint8Array(KEYS_HEADER + KEY_ENTRY * m.keys.length);
  const dv = new DataView(out.buffer);
  out[0] = WIRE_VERSION;
  out[1] = CODES.keys;
  dv.setUint32(2, m.round);
  dv.setUint32(6, m.keys.length);
  m.keys.forEach((k, i) => {
    let o = KEYS_HEADER + KEY_ENTRY * i;
    dv.setUint32(o, k.clientId);
    o += 4;
    for (const [field, len] of KEY_FIELDS) {
      if (k[field].length !== len) throw new RangeError(`keys[${i}].${field} must be ${len} bytes, received ${k[field].length}`);
      out.set(k[field], o);
      o += len;
    }
  });
  return out;
}

function parseKeyList(bytes: Uint8Array): KeyListMsg {
  if (bytes.length < KEYS_HEADER) throw new SecAggError('format', `keys: length ${bytes.length} is shorter than the ${KEYS_HEADER}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const count = dv.getUint32(6);
  if (bytes.length !== KEYS_HEADER + KEY_ENTRY * count) throw new SecAggError('format', `keys: length ${bytes.length} is not the header plus ${count} entries of ${KEY_ENTRY} bytes`);
  const keys: SignedKeys[] = [];
  for (let i = 0; i < count; i++) {
    let o = KEYS_HEADER + KEY_ENTRY * i;
    const clientId = int(dv.getUint32(o), `keys.keys[${i}].clientId`, 0, 2 ** 31 - 1);
    o += 4;
    const f: Record<string, Uint8Array> = {};
    for (const [field, len] of KEY_FIELDS) {
      f[field] = bytes.slice(o, o + len);
      o += len;
    }
    keys.push({ clientId, cPk: f.cPk!, sPk: f.sPk!, bCommit: f.bCommit!, sig: f.sig! });
  }
  return { type: 'keys', round: dv.getUint32(2), keys };
}

const CHUNK_HEADER = 2 + 4 + 32 + 4 + 4;

function encodeChunk(m: MaskedChunkMsg): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER + 4 * m.words.length);
  const dv = new DataView(out.buffer);
  out[0] = WIRE_VERSION;
  out[1] = CODES.chunk;
  dv.setUint32(2, m.round);
  out.set(m.session, 6);
  dv.setUint32(38, m.sender);
  dv.setUint32(42, m.offset);
  // Words are little-endian on the wire; mask-prg refuses big-endian hosts, so a byte copy is exact.
  out.set(new Uint8Array(m.words.buffer, m.words.byteOffset, m.words.byteLength), CHUNK_HEADER);
  return out;
}

function parseChunk(bytes: Uint8Array): MaskedChunkMsg {
  if (bytes.length < CHUNK_HEADER || (bytes.length - CHUNK_HEADER) % 4 !== 0) {
    throw new SecAggError('format', `chunk: length ${bytes.length} is not a header of ${CHUNK_HEADER} bytes plus whole 32-bit words`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const words = new Uint32Array(bytes.slice(CHUNK_HEADER).buffer); // little-endian words (see encodeChunk)
  return { type: 'chunk', round: dv.getUint32(2), session: bytes.slice(6, 38), sender: dv.getUint32(38), offset: dv.getUint32(42), words };
}

/** Parses any message; throws SecAggError('version' | 'format') on anything malformed. */
export function parseMessage(bytes: Uint8Array): ServerMsg | ClientMsg {
  const { type } = readHeader(bytes);
  const name = NAMES.get(type);
  if (!name) throw new SecAggError('format', `unknown message type byte ${type}`);
  if (name === 'chunk') return parseChunk(bytes);
  if (name === 'keys') return parseKeyList(bytes);
  const F = (keys: string[]) => readJsonBody(bytes, name, keys);
  switch (name) {
    case 'config': {
      const o = F(['round', 'cohort', 'k', 't', 'dim', 'graphSeed']);
      return { type: name, round: int(o.round, 'config.round'), cohort: idList(o.cohort, 'config.cohort'), k: int(o.k, 'config.k', 1), t: int(o.t, 'config.t', 1), dim: int(o.dim, 'config.dim', 1, 2 ** 30), graphSeed: unb64(o.graphSeed, 'config.graphSeed', 32) };
    }
    case 'shares': {
      const o = F(['round', 'session', 'shares']);
      const shares = array(o.shares, 'shares.shares').map((e, i) => {
        const r = record(e, `shares.shares[${i}]`, ['from', 'ct']);
        return { from: int(r.from, `shares.shares[${i}].from`, 0, 2 ** 31 - 1), ct: unb64(r.ct, `shares.shares[${i}].ct`, SEALED_SHARE_BYTES) };
      });
      return { type: name, round: int(o.round, 'shares.round'), session: unb64(o.session, 'shares.session', 32), shares };
    }
    case 'peers': {
      const o = F(['round', 'session', 'peers']);
      return { type: name, round: int(o.round, 'peers.round'), session: unb64(o.session, 'peers.session', 32), peers: idList(o.peers, 'peers.peers') };
    }
    case 'receipt': {
      const o = F(['round', 'session', 'sender', 'rejected']);
      return { type: name, round: int(o.round, 'receipt.round'), session: unb64(o.session, 'receipt.session', 32), sender: int(o.sender, 'receipt.sender', 0, 2 ** 31 - 1), rejected: idList(o.rejected, 'receipt.rejected') };
    }
    case 'survivors': {
      const o = F(['round', 'session', 'survivors']);
      return { type: name, round: int(o.round, 'survivors.round'), session: unb64(o.session, 'survivors.session', 32), survivors: idList(o.survivors, 'survivors.survivors') };
    }
    case 'unmask': {
      const o = F(['round', 'session', 'alive', 'dropped', 'signatures']);
      const signatures = array(o.signatures, 'unmask.signatures').map((e, i) => {
        const r = record(e, `unmask.signatures[${i}]`, ['clientId', 'sig']);
        return { clientId: int(r.clientId, `unmask.signatures[${i}].clientId`, 0, 2 ** 31 - 1), sig: unb64(r.sig, `unmask.signatures[${i}].sig`, 64) };
      });
      return { type: name, round: int(o.round, 'unmask.round'), session: unb64(o.session, 'unmask.session', 32), alive: idList(o.alive, 'unmask.alive'), dropped: idList(o.dropped, 'unmask.dropped'), signatures };
    }
    case 'abort': {
      const o = F(['round', 'check', 'reason']);
      if (typeof o.check !== 'string' || typeof o.reason !== 'string') throw new SecAggError('format', 'abort: check and reason must be strings');
      return { type: name, round: int(o.round, 'abort.round'), check: o.check, reason: o.reason };
    }
    case 'advertise': {
      const o = F(['round', 'sender', 'cPk', 'sPk', 'bCommit', 'sig']);
      return { type: name, round: int(o.round, 'advertise.round'), sender: int(o.sender, 'advertise.sender', 0, 2 ** 31 - 1), cPk: unb64(o.cPk, 'advertise.cPk', 32), sPk: unb64(o.sPk, 'advertise.sPk', 32), bCommit: unb64(o.bCommit, 'advertise.bCommit', 32), sig: unb64(o.sig, 'advertise.sig', 64) };
    }
    case 'share': {
      const o = F(['round', 'session', 'sender', 'shares']);
      const shares = array(o.shares, 'share.shares').map((e, i) => {
        const r = record(e, `share.shares[${i}]`, ['to', 'ct']);
        return { to: int(r.to, `share.shares[${i}].to`, 0, 2 ** 31 - 1), ct: unb64(r.ct, `share.shares[${i}].ct`, SEALED_SHARE_BYTES) };
      });
      return { type: name, round: int(o.round, 'share.round'), session: unb64(o.session, 'share.session', 32), sender: int(o.sender, 'share.sender', 0, 2 ** 31 - 1), shares };
    }
    case 'consistency': {
      const o = F(['round', 'session', 'sender', 'sig']);
      return { type: name, round: int(o.round, 'consistency.round'), session: unb64(o.session, 'consistency.session', 32), sender: int(o.sender, 'consistency.sender', 0, 2 ** 31 - 1), sig: unb64(o.sig, 'consistency.sig', 64) };
    }
    case 'unmask-shares': {
      const o = F(['round', 'session', 'sender', 'bShares', 'sShares']);
      const list = (v: unknown, what: string) =>
        array(v, what).map((e, i) => {
          const r = record(e, `${what}[${i}]`, ['of', 'y']);
          return { of: int(r.of, `${what}[${i}].of`, 0, 2 ** 31 - 1), y: shareY(r.y, `${what}[${i}].y`) };
        });
      return { type: name, round: int(o.round, 'unmask-shares.round'), session: unb64(o.session, 'unmask-shares.session', 32), sender: int(o.sender, 'unmask-shares.sender', 0, 2 ** 31 - 1), bShares: list(o.bShares, 'unmask-shares.bShares'), sShares: list(o.sShares, 'unmask-shares.sShares') };
    }
  }
}

/** Parses a message and checks that it has the expected type (SecAggError 'stage' otherwise). */
export function parseExpected<T extends (ServerMsg | ClientMsg)['type']>(bytes: Uint8Array, expected: T, stage: string): Extract<ServerMsg | ClientMsg, { type: T }> {
  const m = parseMessage(bytes);
  if (m.type !== expected) throw new SecAggError('stage', `expect a '${expected}' message in stage ${stage}, but received '${m.type}'`);
  return m as Extract<ServerMsg | ClientMsg, { type: T }>;
}
