import { describe, expect, it } from 'vitest';
import { SecAggClient, generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import { SecureRound } from './secure-round.js';

const rng = seededRandomBytes('secure-round-deadlines');
const NAMES = ['a', 'b', 'c', 'd', 'e'];
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const layout = [{ name: 'w', shape: [2, 2] }];

describe('SecureRound stage deadlines', () => {
  it('gives the first stage (the cohort arriving) its own deadline, and every later stage stageTimeoutMs', () => {
    const round = new SecureRound(1, NAMES, layout, { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 1, stageTimeoutMs: 1000, advertiseTimeoutMs: 5000, rng }, 60_000, 0);
    expect(round.stage).toBe('advertise');
    expect(round.nextDeadline()).toBe(5000);
    expect(round.tick(4999)).toBe(false);
    expect(round.stage).toBe('advertise');
    // Every member advertises; the stage closes at the next tick and the share stage gets stageTimeoutMs.
    const roster = new Map(NAMES.map((n) => [round.plan.ids[n]!, identities.get(n)!.publicKey]));
    for (const n of NAMES) {
      const client = new SecAggClient({ round: 1, clientId: round.plan.ids[n]!, identitySecretKey: identities.get(n)!.secretKey, identities: roster, rng });
      const config = round.exchange(n, '', new Uint8Array(0));
      const out = client.handle(config.payload);
      if (out.kind !== 'send') throw new Error(`expected an advertisement, received ${out.kind}`);
      round.exchange(n, out.stage, out.bytes);
    }
    expect(round.tick(5000)).toBe(false);
    expect(round.stage).toBe('share');
    expect(round.nextDeadline()).toBe(6000);
  });

  it('uses stageTimeoutMs for the first stage too when no advertise deadline is given', () => {
    const round = new SecureRound(1, NAMES, layout, { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 1, stageTimeoutMs: 1000, rng }, 60_000, 0);
    expect(round.nextDeadline()).toBe(1000);
  });
});
