import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { SecAggClient, generateIdentity } from './client.js';
import { SecAggError } from './errors.js';
import { encodeMessage, parseMessage, type ClientMsg, type Stage } from './messages.js';
import { SecAggServer } from './server.js';
import { SHAMIR_ELEMENT_BYTES } from './shamir.js';

/**
 * #16 finding 6: one malicious cohort member must not abort a secure round. A round of n clients
 * is driven by hand; the malicious client's outgoing messages pass through `tamper`. The honest
 * clients' sum must come out exactly, and the server must name the culprit.
 */
const DIM = 8;

function round(o: { n: number; t: number; seed: string; tamper: (id: number, stage: Stage, m: ClientMsg) => ClientMsg | null; stagedUploads?: number }) {
  const rng = seededRandomBytes(o.seed);
  const ids = Array.from({ length: o.n }, (_, i) => i + 1);
  const identities = new Map(ids.map((id) => [id, generateIdentity(rng)]));
  const roster = new Map([...identities].map(([id, kp]) => [id, kp.publicKey]));
  const input = (id: number) => Uint32Array.from({ length: DIM }, (_, i) => 1000 * id + i);
  const server = new SecAggServer({ round: 1, cohort: ids, identities: roster, k: o.n - 1, t: o.t, dim: DIM, rng, stagedUploads: o.stagedUploads });
  const clients = new Map(ids.map((id) => [id, new SecAggClient({ round: 1, clientId: id, identitySecretKey: identities.get(id)!.secretKey, identities: roster, rng, input: input(id) })]));
  const clientAborts = new Map<number, string>();
  while (server.stage !== 'finished' && server.stage !== 'aborted') {
    for (const id of ids) {
      const r = server.poll(id);
      if (r.kind !== 'message' || clientAborts.has(id)) continue;
      let reply;
      try {
        reply = clients.get(id)!.handle(r.bytes);
      } catch (e) {
        if (!(e instanceof SecAggError)) throw e;
        clientAborts.set(id, e.check);
        continue;
      }
      const out = reply.kind === 'send' ? [reply.bytes] : reply.kind === 'masked-input' ? [...reply.chunks(4)] : [];
      for (const bytes of out) {
        const m = o.tamper(id, r.stage, parseMessage(bytes) as ClientMsg);
        if (m) server.handle(id, r.stage, encodeMessage(m));
      }
    }
    server.advance();
  }
  const honestSum = (survivors: number[]) => {
    const s = new Uint32Array(DIM);
    for (const id of survivors) input(id).forEach((w, i) => (s[i] = (s[i]! + w) >>> 0));
    return s;
  };
  return { server, clientAborts, honestSum };
}

const garble = (ct: Uint8Array) => Uint8Array.from(ct, (b, i) => (i >= 24 ? b ^ 0x5a : b));

describe('a malicious cohort member cannot abort the round (#16 finding 6)', () => {
  it('garbage share ciphertexts to every neighbour: the sender drops out, the others finish with their exact sum', () => {
    const { server, clientAborts, honestSum } = round({
      n: 6,
      t: 3,
      seed: 'garbage-all',
      tamper: (id, _s, m) => (id === 4 && m.type === 'share' ? { ...m, shares: m.shares.map((s) => ({ ...s, ct: garble(s.ct) })) } : m),
    });
    expect(clientAborts.size).toBe(0);
    expect(server.stage).toBe('finished');
    const { sum, survivors } = server.result();
    expect(survivors).toEqual([1, 2, 3, 5, 6]);
    expect(Array.from(sum)).toEqual(Array.from(honestSum(survivors)));
    expect(server.misbehaved().get(4)).toMatch(/share ciphertext\(s\) to client\(s\) 1, 2, 3, 5, 6 did not open/);
  });

  it('garbage to k - t + 1 neighbours (fewer than t of them could rebuild its key): still the exact honest sum', () => {
    const { server, honestSum } = round({
      n: 6,
      t: 3,
      seed: 'garbage-some',
      tamper: (id, _s, m) => (id === 2 && m.type === 'share' ? { ...m, shares: m.shares.map((s) => (s.to >= 4 ? { ...s, ct: garble(s.ct) } : s)) } : m),
    });
    const { sum, survivors } = server.result();
    expect(survivors).toEqual([1, 3, 4, 5, 6]);
    expect(Array.from(sum)).toEqual(Array.from(honestSum(survivors)));
    expect([...server.misbehaved().keys()]).toEqual([2]);
  });

  it('a receipt that falsely rejects every neighbour: the liar is removed, not the honest senders', () => {
    const { server, clientAborts, honestSum } = round({
      n: 6,
      t: 3,
      seed: 'false-receipt',
      tamper: (id, _s, m) => (id === 5 && m.type === 'receipt' ? { ...m, rejected: [1, 2, 3, 4, 6] } : m),
    });
    expect(clientAborts.size).toBe(0);
    const { sum, survivors } = server.result();
    expect(survivors).toEqual([1, 2, 3, 4, 6]);
    expect(Array.from(sum)).toEqual(Array.from(honestSum(survivors)));
    expect([...server.misbehaved().keys()]).toEqual([5]);
  });

  it('a bad Shamir share among the first t revealed: reconstruction tries other subsets, verifies, and blames the revealer', () => {
    // Client 1 answers first in every stage, so its shares are the first by arrival.
    const { server, honestSum } = round({
      n: 6,
      t: 3,
      seed: 'bad-share',
      tamper: (id, _s, m) => {
        if (id !== 1 || m.type !== 'unmask-shares') return m;
        const bad = new Uint8Array(SHAMIR_ELEMENT_BYTES);
        bad[SHAMIR_ELEMENT_BYTES - 1] = 7;
        return { ...m, bShares: m.bShares.map((s, i) => (i === 0 ? { ...s, y: bad } : s)) };
      },
    });
    expect(server.stage).toBe('finished');
    const { sum, survivors } = server.result();
    expect(survivors).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(sum)).toEqual(Array.from(honestSum(survivors)));
    expect(server.misbehaved().get(1)).toMatch(/revealed a share of client 2 inconsistent with client 2's commitment/);
  });

  it('every share it reveals is bad: still the exact sum (each secret has t honest shares left)', () => {
    const { server, honestSum } = round({
      n: 6,
      t: 3,
      seed: 'bad-shares',
      tamper: (id, _s, m) => {
        if (id !== 1 || m.type !== 'unmask-shares') return m;
        const flip = (s: { of: number; y: Uint8Array }) => ({ ...s, y: Uint8Array.from(s.y, (b, i) => (i === SHAMIR_ELEMENT_BYTES - 1 ? b ^ 1 : b)) });
        return { ...m, bShares: m.bShares.map(flip), sShares: m.sShares.map(flip) };
      },
    });
    const { sum, survivors } = server.result();
    expect(Array.from(sum)).toEqual(Array.from(honestSum(survivors)));
    expect([...server.misbehaved().keys()]).toEqual([1]);
  });

  it('when no subset of a secret verifies, the round aborts and the owner of the secret is named (it dealt inconsistent shares)', () => {
    // Every revealed self-mask share of client 2 is off its polynomial, as when 2 sealed inconsistent share values.
    const { server } = round({
      n: 6,
      t: 3,
      seed: 'bad-dealer',
      tamper: (_id, _s, m) => {
        if (m.type !== 'unmask-shares') return m;
        return { ...m, bShares: m.bShares.map((s) => (s.of === 2 ? { ...s, y: Uint8Array.from(s.y, (b, i) => (i === SHAMIR_ELEMENT_BYTES - 1 ? b ^ 1 : b)) } : s)) };
      },
    });
    expect(server.stage).toBe('aborted');
    expect(server.error?.check).toBe('reconstruction');
    expect(server.misbehaved().get(2)).toMatch(/no subset of its revealed shares reconstructs the secret it committed to/);
  });

  it('a partial masked upload then silence: with staged uploads the uploader counts as dropped and the others finish', () => {
    const { server, honestSum } = round({
      n: 6,
      t: 3,
      seed: 'partial',
      stagedUploads: 6,
      tamper: (id, _s, m) => (id === 3 && m.type === 'chunk' && m.offset > 0 ? null : m),
    });
    const { sum, survivors } = server.result();
    expect(survivors).toEqual([1, 2, 4, 5, 6]);
    expect(Array.from(sum)).toEqual(Array.from(honestSum(survivors)));
    expect(server.misbehaved().get(3)).toMatch(/stopped mid-upload \(4 of 8 words\)/);
  });
});
