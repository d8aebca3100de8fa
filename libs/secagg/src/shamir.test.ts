import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { SHAMIR_ELEMENT_BYTES, SHAMIR_PRIME, bigIntToBytes, bytesToBigInt, shamirCombine, shamirCombineMany, shamirSplit, sharesOnPolynomial } from './shamir.js';

/** All size-`m` subsets of `items` (small inputs only). */
function subsets<T>(items: T[], m: number): T[][] {
  if (m === 0) return [[]];
  if (items.length < m) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, m - 1).map((s) => [head!, ...s]), ...subsets(rest, m)];
}

describe('shamir', () => {
  it('uses the Mersenne prime 2^521 - 1', () => {
    expect(SHAMIR_PRIME.toString(16)).toBe('1' + 'f'.repeat(130));
  });

  it('any t of n shares reconstruct the secret (all subsets, t=3, n=6)', () => {
    const rng = seededRandomBytes('shamir-any-t');
    const secret = rng(32);
    const shares = shamirSplit(secret, 3, [1, 2, 3, 4, 5, 6], rng);
    for (const subset of subsets(shares, 3)) expect(shamirCombine(subset, 32)).toEqual(secret);
    for (const subset of subsets(shares, 5)) expect(shamirCombine(subset, 32)).toEqual(secret);
  });

  it('no t-1 shares reconstruct the secret', () => {
    const rng = seededRandomBytes('shamir-t-minus-1');
    for (let trial = 0; trial < 20; trial++) {
      const secret = rng(32);
      const shares = shamirSplit(secret, 4, [3, 7, 11, 12, 40, 41, 99], rng);
      for (const subset of subsets(shares, 3)) {
        let combined: Uint8Array | undefined;
        try {
          combined = shamirCombine(subset, 32);
        } catch {
          combined = undefined; // the interpolated value does not even fit in 32 bytes
        }
        expect(combined).not.toEqual(secret);
      }
    }
  });

  it('reconstructs many secrets at once, each as shamirCombine would', () => {
    const rng = seededRandomBytes('shamir-many');
    const secrets = [rng(32), rng(32), rng(16)];
    const sets = secrets.map((s, i) => shamirSplit(s, 3 + i, [2, 4, 6, 8, 10, 12, 14, 16], rng).slice(i, i + 3 + i));
    expect(shamirCombineMany(sets.slice(0, 2), 32)).toEqual(secrets.slice(0, 2));
    expect(shamirCombineMany([sets[2]!], 16)[0]).toEqual(secrets[2]);
  });

  it('a corrupted share changes the reconstruction', () => {
    const rng = seededRandomBytes('shamir-corrupt');
    const secret = rng(32);
    const shares = shamirSplit(secret, 2, [1, 2], rng);
    shares[0]!.y[65]! ^= 1;
    let combined: Uint8Array | undefined;
    try {
      combined = shamirCombine(shares, 32);
    } catch {
      combined = undefined;
    }
    expect(combined).not.toEqual(secret);
  });

  it('validates its arguments with typed errors', () => {
    const rng = seededRandomBytes('shamir-args');
    expect(() => shamirSplit(new Uint8Array(65), 2, [1, 2], rng)).toThrow(RangeError);
    expect(() => shamirSplit(new Uint8Array(8), 3, [1, 2], rng)).toThrow(/threshold=3/);
    expect(() => shamirSplit(new Uint8Array(8), 2, [1, 1], rng)).toThrow(/distinct/);
    expect(() => shamirSplit(new Uint8Array(8), 2, [0, 1], rng)).toThrow(/1\.\.2\^32-1/);
    expect(() => shamirSplit('x' as unknown as Uint8Array, 1, [1], rng)).toThrow(TypeError);
  });

  it('round-trips big-endian integers', () => {
    expect(bytesToBigInt(bigIntToBytes(258n, 4))).toBe(258n);
    expect(bigIntToBytes(258n, 2)).toEqual(new Uint8Array([1, 2]));
    expect(() => bigIntToBytes(65536n, 2)).toThrow(RangeError);
  });

  it('sharesOnPolynomial: every honest share lies on the polynomial of any t of them; a changed or out-of-field one does not', () => {
    const rng = seededRandomBytes('on-polynomial');
    const shares = shamirSplit(rng(32), 4, [3, 5, 8, 9, 11, 20, 21], rng);
    const bad = { x: shares[5]!.x, y: shares[5]!.y.slice() };
    bad.y[SHAMIR_ELEMENT_BYTES - 1]! ^= 1;
    const huge = { x: shares[6]!.x, y: bigIntToBytes(SHAMIR_PRIME, SHAMIR_ELEMENT_BYTES) };
    const [honest, mixed] = sharesOnPolynomial([
      { basis: shares.slice(0, 4), others: shares.slice(4) },
      { basis: shares.slice(1, 5), others: [shares[0]!, bad, huge] },
    ]);
    expect(honest).toEqual([true, true, true]);
    expect(mixed).toEqual([true, false, false]);
  });
});
