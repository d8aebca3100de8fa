import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { SecAggClient, generateIdentity } from './client.js';
import { SecAggError, type SecAggCheck } from './errors.js';
import { advertiseSigningBytes, generateX25519, sign, commitSeed } from './key-agreement.js';
import { encodeMessage, parseMessage, type ServerMsg, type ClientMsg } from './messages.js';
import { SecAggServer } from './server.js';

/** A round driven by hand, so tests can intercept and forge messages between the parties. */
function setup(opts: { n?: number; round?: number; usedKeys?: Set<string>; seed?: string; stagedUploads?: number } = {}) {
  const n = opts.n ?? 5;
  const round = opts.round ?? 1;
  const rng = seededRandomBytes(opts.seed ?? 'adv');
  const ids = Array.from({ length: n }, (_, i) => i);
  const identities = new Map(ids.map((id) => [id, generateIdentity(rng)]));
  const roster = new Map([...identities].map(([id, kp]) => [id, kp.publicKey]));
  const server = new SecAggServer({ round, cohort: ids, identities: roster, k: n - 1, t: Math.floor((n - 1) / 2) + 1, dim: 8, rng, usedKeys: opts.usedKeys, stagedUploads: opts.stagedUploads });
  const clients = new Map(
    ids.map((id) => [id, new SecAggClient({ round, clientId: id, identitySecretKey: identities.get(id)!.secretKey, identities: roster, rng, input: new Uint32Array(8).fill(id) })]),
  );
  const sent = new Map<number, Uint8Array[]>();
  /** Runs the current stage for every client, recording what each sent, then advances. */
  const step = () => {
    for (const id of ids) {
      const r = server.poll(id);
      if (r.kind !== 'message') continue;
      const reply = clients.get(id)!.handle(r.bytes);
      const out = reply.kind === 'send' ? [reply.bytes] : reply.kind === 'masked-input' ? [...reply.chunks(4)] : [];
      sent.set(id, out);
      for (const b of out) server.handle(id, server.stage, b);
    }
    server.advance();
  };
  return { n, round, rng, ids, identities, roster, server, clients, step, sent };
}

function checkOf(fn: () => unknown): SecAggCheck | 'no error' {
  try {
    fn();
  } catch (e) {
    if (e instanceof SecAggError) return e.check;
    throw e;
  }
  return 'no error';
}

/** Decodes, edits and re-encodes a message. */
function edit<T extends ServerMsg | ClientMsg>(bytes: Uint8Array, f: (m: T) => void): Uint8Array {
  const m = parseMessage(bytes) as T;
  f(m);
  return encodeMessage(m);
}

describe('client rejects a lying or tampering server', () => {
  it('a tampered share ciphertext makes its sender drop out; the receiver reports it and goes on (#16 finding 6)', () => {
    const h = setup();
    h.step(); // advertise
    h.step(); // share
    const delivery = h.server.poll(0);
    if (delivery.kind !== 'message') throw new Error('expected a delivery');
    let from = -1;
    const forged = edit<Extract<ServerMsg, { type: 'shares' }>>(delivery.bytes, (m) => {
      from = m.shares[0]!.from;
      m.shares[0]!.ct[40]! ^= 1;
    });
    const reply = h.clients.get(0)!.handle(forged);
    if (reply.kind !== 'send') throw new Error('expected a receipt');
    expect(h.clients.get(0)!.stage).toBe('received');
    expect(parseMessage(reply.bytes)).toMatchObject({ type: 'receipt', sender: 0, rejected: [from] });
  });

  it('a key advertisement with a wrong signature -> signature', () => {
    const h = setup();
    h.step();
    const keys = h.server.poll(0);
    if (keys.kind !== 'message') throw new Error('expected keys');
    const forged = edit<Extract<ServerMsg, { type: 'keys' }>>(keys.bytes, (m) => {
      m.keys[1]!.sPk = generateX25519(h.rng).publicKey; // server substitutes its own key for client 1
    });
    expect(checkOf(() => h.clients.get(0)!.handle(forged))).toBe('signature');
  });

  it('a key list that changes the client\'s own keys -> consistency', () => {
    const h = setup();
    h.step();
    const keys = h.server.poll(2);
    if (keys.kind !== 'message') throw new Error('expected keys');
    const forged = edit<Extract<ServerMsg, { type: 'keys' }>>(keys.bytes, (m) => {
      m.keys = m.keys.filter((k) => k.clientId !== 2);
    });
    expect(checkOf(() => h.clients.get(2)!.handle(forged))).toBe('consistency');
  });

  it('an out-of-stage message -> stage', () => {
    const h = setup();
    h.step();
    const cfgBytes = encodeMessage({ type: 'config', round: 1, cohort: h.ids, k: 4, t: 3, dim: 8, graphSeed: new Uint8Array(32) });
    expect(checkOf(() => h.clients.get(0)!.handle(cfgBytes))).toBe('stage');
  });

  it('a message from another round -> round; from another session -> session', () => {
    const h = setup();
    h.step();
    h.step();
    const delivery = h.server.poll(0);
    if (delivery.kind !== 'message') throw new Error('expected a delivery');
    expect(checkOf(() => h.clients.get(0)!.handle(edit<Extract<ServerMsg, { type: 'shares' }>>(delivery.bytes, (m) => void (m.round = 2))))).toBe('round');
    const h2 = setup({ seed: 'adv-2' });
    h2.step();
    h2.step();
    expect(checkOf(() => h2.clients.get(0)!.handle(delivery.bytes))).toBe('session'); // replay of round 1's message into another session
  });

  it('an unmask request listing a client as both alive and dropped -> alive-and-dropped', () => {
    const h = setup();
    for (let i = 0; i < 5; i++) h.step();
    const req = h.server.poll(0);
    if (req.kind !== 'message') throw new Error('expected an unmask request');
    const forged = edit<Extract<ServerMsg, { type: 'unmask' }>>(req.bytes, (m) => void (m.dropped = [3]));
    expect(checkOf(() => h.clients.get(0)!.handle(forged))).toBe('alive-and-dropped');
  });

  it('an unmask request whose alive set differs from the signed survivor set -> consistency', () => {
    const h = setup();
    for (let i = 0; i < 5; i++) h.step();
    const req = h.server.poll(0);
    if (req.kind !== 'message') throw new Error('expected an unmask request');
    const forged = edit<Extract<ServerMsg, { type: 'unmask' }>>(req.bytes, (m) => {
      m.alive = m.alive.filter((u) => u !== 4);
      m.dropped = [4]; // server pretends 4 dropped to get its key share while 4's input is in the sum
    });
    expect(checkOf(() => h.clients.get(0)!.handle(forged))).toBe('consistency');
  });

  it('a survivor list that omits the client itself -> consistency', () => {
    const h = setup();
    for (let i = 0; i < 4; i++) h.step();
    const req = h.server.poll(1);
    if (req.kind !== 'message') throw new Error('expected a survivor list');
    const forged = edit<Extract<ServerMsg, { type: 'survivors' }>>(req.bytes, (m) => void (m.survivors = m.survivors.filter((u) => u !== 1)));
    expect(checkOf(() => h.clients.get(1)!.handle(forged))).toBe('consistency');
  });

  it('a different configuration shown to one client yields another session id: its messages are refused -> session', () => {
    const h = setup();
    const cfg = h.server.poll(0);
    if (cfg.kind !== 'message') throw new Error('expected config');
    const forged = edit<Extract<ServerMsg, { type: 'config' }>>(cfg.bytes, (m) => void (m.t = 4)); // client 0 sees t = 4, the others t = 3
    for (const id of h.ids) {
      const r = h.server.poll(id);
      if (r.kind !== 'message') continue;
      const reply = h.clients.get(id)!.handle(id === 0 ? forged : r.bytes);
      if (reply.kind === 'send') h.server.handle(id, 'advertise', reply.bytes);
    }
    h.server.advance();
    const keys = h.server.poll(0);
    if (keys.kind !== 'message') throw new Error('expected keys');
    const reply = h.clients.get(0)!.handle(keys.bytes);
    if (reply.kind !== 'send') throw new Error('expected shares');
    expect(checkOf(() => h.server.handle(0, 'share', reply.bytes))).toBe('session');
  });

  it('refuses a threshold t <= k/2 -> params', () => {
    const h = setup();
    const bad = encodeMessage({ type: 'config', round: 1, cohort: h.ids, k: 4, t: 2, dim: 8, graphSeed: new Uint8Array(32) });
    expect(checkOf(() => h.clients.get(0)!.handle(bad))).toBe('params');
  });
});

describe('server rejects misbehaving or replayed client messages', () => {
  it('a wrong signature on an advertisement -> signature', () => {
    const h = setup();
    const cfg = h.server.poll(0);
    if (cfg.kind !== 'message') throw new Error('expected config');
    const reply = h.clients.get(0)!.handle(cfg.bytes);
    if (reply.kind !== 'send') throw new Error('expected an advertisement');
    const forged = edit<Extract<ClientMsg, { type: 'advertise' }>>(reply.bytes, (m) => void (m.sig = sign(new Uint8Array([1]), h.identities.get(1)!.secretKey)));
    expect(checkOf(() => h.server.handle(0, 'advertise', forged))).toBe('signature');
    expect(h.server.handle(0, 'advertise', reply.bytes).kind).toBe('wait'); // the genuine one still goes through
  });

  it('a replayed message -> duplicate; a spoofed sender -> sender; wrong stage -> stage', () => {
    const h = setup();
    h.step();
    const adv = h.sent.get(0)![0]!;
    expect(checkOf(() => h.server.handle(0, 'share', adv))).toBe('stage'); // advertise message in share stage
    expect(checkOf(() => h.server.handle(0, 'advertise', adv))).toBe('stage'); // the stage has moved on
    h.step();
    const share = h.sent.get(0)![0]!;
    expect(checkOf(() => h.server.handle(1, 'collect', share))).toBe('stage');
    const h2 = setup({ seed: 'adv-dup' });
    const cfg = h2.server.poll(0);
    if (cfg.kind !== 'message') throw new Error('expected config');
    const reply = h2.clients.get(0)!.handle(cfg.bytes);
    if (reply.kind !== 'send') throw new Error('expected an advertisement');
    h2.server.handle(0, 'advertise', reply.bytes);
    expect(checkOf(() => h2.server.handle(0, 'advertise', reply.bytes))).toBe('duplicate');
    expect(checkOf(() => h2.server.handle(1, 'advertise', reply.bytes))).toBe('sender');
  });

  it('a message replayed from an earlier round -> round; from an earlier session -> session', () => {
    const h1 = setup({ round: 1, seed: 'r1' });
    h1.step();
    h1.step();
    const oldShare = h1.sent.get(0)![0]!;
    const h2 = setup({ round: 2, seed: 'r2' });
    h2.step();
    expect(checkOf(() => h2.server.handle(0, 'share', oldShare))).toBe('round');
    const patched = edit<Extract<ClientMsg, { type: 'share' }>>(oldShare, (m) => void (m.round = 2));
    expect(checkOf(() => h2.server.handle(0, 'share', patched))).toBe('session');
  });

  it('keys reused from an earlier round -> key-reuse', () => {
    const usedKeys = new Set<string>();
    const h1 = setup({ round: 1, usedKeys, seed: 'reuse' });
    h1.step();
    const old = parseMessage(h1.sent.get(0)![0]!) as Extract<ClientMsg, { type: 'advertise' }>;
    const h2 = setup({ round: 2, usedKeys, seed: 'reuse' });
    const keys = { clientId: 0, cPk: old.cPk, sPk: old.sPk, bCommit: commitSeed(h2.rng(32)) };
    const sig = sign(advertiseSigningBytes(2, keys), h2.identities.get(0)!.secretKey);
    const reused = encodeMessage({ type: 'advertise', round: 2, sender: 0, ...keys, sig });
    expect(checkOf(() => h2.server.handle(0, 'advertise', reused))).toBe('key-reuse');
  });

  it('masked chunks out of order or out of range -> chunk', () => {
    const h = setup();
    h.step();
    h.step();
    h.step();
    expect(checkOf(() => h.server.addMaskedChunk(0, 4, new Uint32Array(4)))).toBe('chunk');
    h.server.addMaskedChunk(0, 0, new Uint32Array(4));
    expect(checkOf(() => h.server.addMaskedChunk(0, 4, new Uint32Array(8)))).toBe('chunk');
  });

  it('a staged upload beyond the slot limit is refused as busy -> chunk', () => {
    const h = setup({ stagedUploads: 1 });
    h.step();
    h.step();
    h.step();
    h.server.addMaskedChunk(0, 0, new Uint32Array(4));
    expect(checkOf(() => h.server.addMaskedChunk(1, 0, new Uint32Array(4)))).toBe('chunk');
    h.server.addMaskedChunk(0, 4, new Uint32Array(4)); // client 0 completes and frees the slot
    expect(checkOf(() => h.server.addMaskedChunk(1, 0, new Uint32Array(4)))).toBe('no error');
  });

  it('malformed bytes -> version / format', () => {
    const h = setup();
    const cfg = h.server.poll(0);
    if (cfg.kind !== 'message') throw new Error('expected config');
    const reply = h.clients.get(0)!.handle(cfg.bytes);
    if (reply.kind !== 'send') throw new Error('expected an advertisement');
    const v2 = reply.bytes.slice();
    v2[0] = 2;
    expect(checkOf(() => h.server.handle(0, 'advertise', v2))).toBe('version');
    expect(checkOf(() => h.server.handle(0, 'advertise', reply.bytes.subarray(0, 20)))).toBe('format');
    const extra = new Uint8Array([...reply.bytes.subarray(0, reply.bytes.length - 1), ...Buffer.from(',"x":1}')]);
    expect(checkOf(() => h.server.handle(0, 'advertise', extra))).toBe('format');
  });

  it('unmask shares of the wrong kind -> alive-and-dropped', () => {
    const h = setup();
    for (let i = 0; i < 5; i++) h.step();
    const req = h.server.poll(0);
    if (req.kind !== 'message') throw new Error('expected an unmask request');
    const reply = h.clients.get(0)!.handle(req.bytes);
    if (reply.kind !== 'send') throw new Error('expected unmask shares');
    const forged = edit<Extract<ClientMsg, { type: 'unmask-shares' }>>(reply.bytes, (m) => {
      m.sShares.push({ of: m.bShares[0]!.of, y: m.bShares[0]!.y }); // a key share of an alive client
      m.bShares.shift();
    });
    expect(checkOf(() => h.server.handle(0, 'unmask', forged))).toBe('alive-and-dropped');
  });
});
