import { createCipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * A source of random bytes. Every function that draws randomness takes one as a parameter
 * (ARCHITECTURE.md: Decisions, Randomness), so production code passes `cryptoRandomBytes` and tests a seeded one.
 */
export type RandomBytes = (n: number) => Uint8Array;

/** The operating system CSPRNG (node:crypto). */
export const cryptoRandomBytes: RandomBytes = (n) => new Uint8Array(randomBytes(n));

/**
 * A deterministic stream for tests and reproducible simulations: AES-256-CTR keystream under
 * key = SHA-256(seed). Cryptographically strong as a PRG, but anyone who knows the seed knows
 * the stream, so production privacy noise must use `cryptoRandomBytes`.
 */
export function seededRandomBytes(seed: string | number): RandomBytes {
  const key = createHash('sha256').update(`fedlora-seed:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => new Uint8Array(cipher.update(Buffer.alloc(n)));
}

/** Uniform float in [0, 1) with 53 random bits (not for privacy noise: see Mironov 2012). */
export function uniform01(rng: RandomBytes): number {
  const b = rng(7);
  const hi = ((b[0]! & 0x1f) << 16) | (b[1]! << 8) | b[2]!; // 21 bits
  const lo = ((b[3]! << 24) | (b[4]! << 16) | (b[5]! << 8) | b[6]!) >>> 0; // 32 bits
  return (hi * 2 ** 32 + lo) / 2 ** 53;
}

/** Uniform integer in [0, n) without modulo bias (rejection sampling), n <= 2^32. */
export function uniformInt(rng: RandomBytes, n: number): number {
  if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new RangeError(`uniformInt needs an integer 1..2^32, received ${n}`);
  const limit = Math.floor(2 ** 32 / n) * n;
  for (;;) {
    const b = rng(4);
    const x = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
    if (x < limit) return x % n;
  }
}

/** Fisher-Yates shuffle in place, using `rng`. */
export function shuffleInPlace<T>(items: T[], rng: RandomBytes): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = uniformInt(rng, i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
