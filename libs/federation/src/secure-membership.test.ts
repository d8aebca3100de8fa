/**
 * A client's own checks of a secure plan (issue 16, finding 1), adversarial: a hostile
 * coordinator rewrites the roster or weakens the parameters; the client refuses before any
 * exchange, so nothing is advertised, trained or sent.
 */
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import { systemClock } from './clock.js';
import { runSecureRound, securePlanRefusal } from './secure-client.js';
import { DEFAULT_SECURE_MINIMUMS, securePlanProblem } from './secure-membership.js';
import type { RoundPlan, SecureRoundPlan } from './types.js';

const rng = seededRandomBytes('secure-membership-test');
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
const ids = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...ids].map(([n, id]) => [n, id.publicKey]));
const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');

function securePlan(names: string[], k: number, t: number, edit: (sp: SecureRoundPlan) => void = () => {}): SecureRoundPlan {
  const sorted = [...names].sort();
  const sp: SecureRoundPlan = {
    ids: Object.fromEntries(sorted.map((n, i) => [n, i + 1])),
    roster: Object.fromEntries(sorted.map((n) => [n, b64(ids.get(n)?.publicKey ?? generateIdentity(rng).publicKey)])),
    k,
    t,
    encoding: { bits: 32, scale: 1, clip: 1, paddedDim: 8, dim: 8, modulus: 2 ** 32 } as unknown as SecureRoundPlan['encoding'],
    rotationSeed: '00'.repeat(32),
  };
  edit(sp);
  return sp;
}

const problem = (sp: SecureRoundPlan, min = DEFAULT_SECURE_MINIMUMS) => securePlanProblem(sp, 'a', ids.get('a')!.publicKey, members, min);

describe('a client accepts an honest secure plan', () => {
  it('of members with their listed keys, full SecAgg over 3 (k = 2, t = 2)', () => {
    expect(problem(securePlan(['a', 'b', 'c'], 2, 2))).toBeUndefined();
  });
  it('of 7 members with k = 4, t = 3 (the parameters chooseSecAggParams picks at dropout 0.1)', () => {
    expect(problem(securePlan(NAMES, 4, 3))).toBeUndefined();
  });
});

describe('a client refuses a secure plan a hostile coordinator rewrote', () => {
  it('a member\'s key replaced by one the coordinator holds', () => {
    const sp = securePlan(['a', 'b', 'c'], 2, 2, (p) => void (p.roster.b = b64(generateIdentity(rng).publicKey)));
    expect(problem(sp)).toMatch(/gives b a key other than the one in the federation's member list/);
  });
  it('this institution listed under a key that is not its own', () => {
    const sp = securePlan(['a', 'b', 'c'], 2, 2, (p) => void (p.roster.a = b64(generateIdentity(rng).publicKey)));
    expect(problem(sp)).toMatch(/lists a with a key that is not this institution's/);
  });
  it('ids that disagree with the roster, or repeat', () => {
    expect(problem(securePlan(['a', 'b', 'c'], 2, 2, (p) => void (p.ids.z = 4)))).toMatch(/roster and protocol ids/);
    expect(problem(securePlan(['a', 'b', 'c'], 2, 2, (p) => void (p.ids.c = 1)))).toMatch(/duplicate protocol ids/);
  });
  it('a cohort smaller than this institution\'s minimum', () => {
    expect(problem(securePlan(['a', 'b'], 1, 1))).toMatch(/cohort has 2 clients; this institution requires at least 3/);
    expect(problem(securePlan(['a', 'b', 'c'], 2, 2), { ...DEFAULT_SECURE_MINIMUMS, minCohort: 5 })).toMatch(/at least 5/);
  });
  it('a threshold at or below k/2 (the server could collect both shares of a client)', () => {
    expect(problem(securePlan(NAMES, 4, 2))).toMatch(/above this institution's 2\^-40/);
  });
  it('a neighbourhood too small for the colluding fraction this institution assumes', () => {
    // With gamma = 0.2, k = 4, t = 3 over 7: 7 P[Bin(4, 0.2) >= 2] is about 0.13, far above 2^-40.
    expect(problem(securePlan(NAMES, 4, 3), { ...DEFAULT_SECURE_MINIMUMS, corruptFraction: 0.2 })).toMatch(/colluding with 0.2/);
  });
  it('odd k below n - 1, and t above k', () => {
    expect(problem(securePlan(NAMES, 3, 2))).toMatch(/k must be even/);
    expect(problem(securePlan(NAMES, 4, 5))).toMatch(/1 <= t <= k <= n - 1/);
  });
  it('refuses every secure plan when it holds no member list', () => {
    const plan = { round: 1, secagg: securePlan(['a', 'b', 'c'], 2, 2) } as RoundPlan;
    expect(securePlanRefusal(plan, 'a', { identitySecretKey: ids.get('a')!.secretKey, members: new Map() })).toMatch(/no member list/);
  });
});

describe('runSecureRound', () => {
  it('throws before the first exchange when the plan names an outsider, so nothing leaves the client', async () => {
    const sp = securePlan(['a', 'b', 'mallory'], 2, 2);
    const plan = { round: 1, nonce: 'n', secagg: sp } as unknown as RoundPlan;
    let exchanges = 0;
    let trained = 0;
    const run = runSecureRound(
      async () => {
        exchanges++;
        return { kind: 'wait', stage: '', payload: new Uint8Array(0) };
      },
      plan,
      'a',
      async () => {
        trained++;
        throw new Error('unreachable');
      },
      { identitySecretKey: ids.get('a')!.secretKey, rng, members },
      systemClock,
    );
    await expect(run).rejects.toThrow(/refuses the secure-aggregation plan of round 1: the roster names mallory, not in the federation's member list/);
    expect({ exchanges, trained }).toEqual({ exchanges: 0, trained: 0 });
  });
});
