/**
 * The private keys of a simulated population, on disk (issue 14 §1: per-client state that grows
 * with the population is compact and on disk). One file per key purpose holds one 32-byte
 * Ed25519 seed per institution, at offset 32 x index (a fixed-record file: no parsing, one read
 * per materialised institution), created 0600 in a 0700 directory. Only the public halves
 * (32 bytes each) stay in memory: the coordinator's roster, the members list every institution
 * checks and the auditor's trusted keys need them all, every round. A secret key is read when an
 * institution is materialised and belongs to its node; nothing here logs or returns a seed
 * except as that institution's secret key.
 */
import { closeSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity } from '@fedlora/secagg';
import type { RandomBytes } from '@fedlora/tensor';

/** Bytes of one record: an Ed25519 seed (RFC 8032 §5.1.5: the 32-byte private key). */
export const SEED_BYTES = 32;

/** Ed25519 keys of `count` institutions: seeds in a file, public keys in memory. */
export class PopulationKeys {
  private constructor(
    /** The seed file (0600). */
    readonly path: string,
    private fd: number | undefined,
    /** Every public key, contiguous: institution i's at [32 i, 32 i + 32). */
    private readonly publics: Uint8Array,
  ) {}

  /**
   * Generates `count` keys from `rng` (a CSPRNG) into `dir`/`purpose`.seeds; refuses to overwrite
   * an existing file (a second simulation in the same directory must not mix keys).
   */
  static create(dir: string, purpose: string, count: number, rng: RandomBytes): PopulationKeys {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(purpose)) throw new RangeError(`purpose must be 1-32 characters of [a-z0-9-], received ${JSON.stringify(purpose)}`);
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, received ${count}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${purpose}.seeds`);
    let fd: number;
    try {
      fd = openSync(path, 'wx+', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${path} already exists: a population's keys are generated once per run (use a new output directory)`);
      throw err;
    }
    const publics = new Uint8Array(count * SEED_BYTES);
    // Written in blocks, so a population's seeds are never all in memory at once.
    const block = new Uint8Array(Math.min(count, 1024) * SEED_BYTES);
    try {
      for (let first = 0; first < count; first += 1024) {
        const n = Math.min(1024, count - first);
        for (let k = 0; k < n; k++) {
          const id = generateIdentity(rng);
          block.set(id.secretKey.subarray(0, SEED_BYTES), k * SEED_BYTES);
          publics.set(id.publicKey, (first + k) * SEED_BYTES);
          id.secretKey.fill(0);
        }
        writeSync(fd, block, 0, n * SEED_BYTES, first * SEED_BYTES);
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    } finally {
      block.fill(0);
    }
    return new PopulationKeys(path, fd, publics);
  }

  /** How many institutions the file holds. */
  get count(): number {
    return this.publics.length / SEED_BYTES;
  }

  /** Institution `index`'s public key (a copy). */
  publicKey(index: number): Uint8Array {
    this.check(index);
    return this.publics.slice(index * SEED_BYTES, (index + 1) * SEED_BYTES);
  }

  /** Institution `index`'s secret key, read from disk, in tweetnacl's layout (seed || public key) that every signer here takes. */
  secretKey(index: number): Uint8Array {
    this.check(index);
    if (this.fd === undefined) throw new Error(`the key file ${this.path} is closed`);
    const key = new Uint8Array(2 * SEED_BYTES);
    const read = readSync(this.fd, key, 0, SEED_BYTES, index * SEED_BYTES);
    if (read !== SEED_BYTES) throw new Error(`the key file ${this.path} is short: record ${index} has ${read} of ${SEED_BYTES} bytes`);
    key.set(this.publics.subarray(index * SEED_BYTES, (index + 1) * SEED_BYTES), SEED_BYTES);
    return key;
  }

  /** Closes the file (the keys stay on disk with the simulation's ledgers). */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) throw new RangeError(`institution index must be an integer in [0, ${this.count}), received ${index}`);
  }
}
