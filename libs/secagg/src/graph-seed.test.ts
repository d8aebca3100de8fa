/**
 * Issue 16 finding 1: the SecAgg+ graph seed is derived from the cohort's identity keys and the
 * round, not chosen by the server, and each client checks it; a client also keeps its own floor
 * on the survivor set. Adversarial cases drive a real SecAggClient with configs a hostile server forges.
 */
import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { SecAggClient, generateIdentity } from './client.js';
import { SecAggError, type SecAggCheck } from './errors.js';
import { deriveGraphSeed } from './graph-seed.js';
import { encodeMessage, parseMessage, type ServerMsg } from './messages.js';
import { SecAggServer } from './server.js';

const rng = seededRandomBytes('graph-seed-test');
const ids = [1, 2, 3, 4, 5, 6, 7];
const identities = new Map(ids.map((id) => [id, generateIdentity(rng)]));
const roster = new Map([...identities].map(([id, kp]) => [id, kp.publicKey]));

function checkOf(fn: () => unknown): SecAggCheck | 'no error' {
  try {
    fn();
  } catch (e) {
    if (e instanceof SecAggError) return e.check;
    throw e;
  }
  return 'no error';
}

const client = (id: number, extra: { minSurvivors?: number } = {}) => new SecAggClient({ round: 9, clientId: id, identitySecretKey: identities.get(id)!.secretKey, identities: roster, rng, input: new Uint32Array(4), ...extra });

describe('deriveGraphSeed', () => {
  it('depends on the round and on every member key, not on the order the cohort is listed in', () => {
    const a = deriveGraphSeed(9, roster);
    expect(deriveGraphSeed(9, [...roster].reverse())).toEqual(a);
    expect(deriveGraphSeed(10, roster)).not.toEqual(a);
    const swapped = new Map(roster);
    swapped.set(3, generateIdentity(rng).publicKey);
    expect(deriveGraphSeed(9, swapped)).not.toEqual(a);
    expect(a).toHaveLength(32);
  });

  it('is what the server puts in its config, so an honest round passes the client check', () => {
    const server = new SecAggServer({ round: 9, cohort: ids, identities: roster, k: 4, t: 3, dim: 4, rng });
    const cfg = server.poll(1);
    if (cfg.kind !== 'message') throw new Error('expected the config');
    expect(Buffer.from((parseMessage(cfg.bytes) as Extract<ServerMsg, { type: 'config' }>).graphSeed).toString('hex')).toBe(server.plan().graphSeedHex);
    expect(server.plan().graphSeedHex).toBe(Buffer.from(deriveGraphSeed(9, roster)).toString('hex'));
    expect(client(1).handle(cfg.bytes).kind).toBe('send');
  });
});

describe('a client refuses a graph the server chose', () => {
  it('a config with a graph seed of the server\'s choosing -> graph, and no key is advertised', () => {
    const chosen = encodeMessage({ type: 'config', round: 9, cohort: ids, k: 4, t: 3, dim: 4, graphSeed: new Uint8Array(32).fill(7) });
    const c = client(1);
    expect(checkOf(() => c.handle(chosen))).toBe('graph');
    expect(c.stage).toBe('aborted');
  });

  it('a cohort naming a client without a roster key -> sender', () => {
    const cohort = [...ids, 99];
    const cfg = encodeMessage({ type: 'config', round: 9, cohort, k: 4, t: 3, dim: 4, graphSeed: deriveGraphSeed(9, roster) });
    expect(checkOf(() => client(1).handle(cfg))).toBe('sender');
  });
});

describe('a client keeps its own floor on the survivors', () => {
  /** Runs a full-SecAgg round of 3 to the survivor list, where the server claims only `survivors` uploaded. */
  function survivorsMessage(minSurvivors: number, claimAlive: number[]) {
    const three = [1, 2, 3];
    const r3 = new Map(three.map((id) => [id, roster.get(id)!]));
    const server = new SecAggServer({ round: 9, cohort: three, identities: r3, k: 2, t: 2, dim: 4, rng });
    const clients = new Map(three.map((id) => [id, new SecAggClient({ round: 9, clientId: id, identitySecretKey: identities.get(id)!.secretKey, identities: r3, rng, input: new Uint32Array(4).fill(id), minSurvivors })]));
    // Every stage before the survivor list (advertise, share, receipt, collect), as an honest server runs them.
    for (let i = 0; i < 6 && server.stage !== 'consistency'; i++) {
      for (const id of three) {
        const r = server.poll(id);
        if (r.kind !== 'message') continue;
        const reply = clients.get(id)!.handle(r.bytes);
        const out = reply.kind === 'send' ? [reply.bytes] : reply.kind === 'masked-input' ? [...reply.chunks(4)] : [];
        for (const b of out) server.handle(id, server.stage, b);
      }
      server.advance();
    }
    const msg = server.poll(1);
    if (msg.kind !== 'message') throw new Error('expected the survivor list');
    const forged = parseMessage(msg.bytes) as Extract<ServerMsg, { type: 'survivors' }>;
    forged.survivors = claimAlive;
    return { client: clients.get(1)!, bytes: encodeMessage(forged) };
  }

  it('signs the survivor list of an honest round', () => {
    const { client: c, bytes } = survivorsMessage(3, [1, 2, 3]);
    expect(c.handle(bytes).kind).toBe('send');
  });

  it('refuses to sign (and so to reveal shares) when fewer survivors than its own minimum are claimed -> threshold', () => {
    const { client: c, bytes } = survivorsMessage(3, [1, 2]);
    expect(checkOf(() => c.handle(bytes))).toBe('threshold');
  });
});

describe('a client refuses a config that differs from the plan it checked', () => {
  const expected = { cohort: ids, k: 4, t: 3 };
  const withExpected = (id: number) => new SecAggClient({ round: 9, clientId: id, identitySecretKey: identities.get(id)!.secretKey, identities: roster, rng, input: new Uint32Array(4), expected });
  const config = (cohort: number[], k: number, t: number) => {
    const r = new Map(cohort.map((id) => [id, roster.get(id)!]));
    return encodeMessage({ type: 'config', round: 9, cohort, k, t, dim: 4, graphSeed: deriveGraphSeed(9, r) });
  };

  it('accepts the plan\'s cohort and parameters', () => {
    expect(withExpected(1).handle(config(ids, 4, 3)).kind).toBe('send');
  });

  it('a cohort cut down to the victim and two others (below the minimum the client checked) -> params', () => {
    expect(checkOf(() => withExpected(1).handle(config([1, 2, 3], 2, 2)))).toBe('params');
  });

  it('a threshold or neighbourhood other than the plan\'s -> params', () => {
    expect(checkOf(() => withExpected(1).handle(config(ids, 6, 4)))).toBe('params');
    expect(checkOf(() => withExpected(1).handle(config(ids, 4, 4)))).toBe('params');
  });
});
