import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { PopulationKeys, SEED_BYTES } from './key-store.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-keys-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('PopulationKeys (private keys of a simulated population on disk)', () => {
  it('keeps one 32-byte seed per institution in a 0600 file, and each secret key read back signs for its public key', () => {
    const dir = join(scratch(), 'keys');
    const keys = PopulationKeys.create(dir, 'ledger', 1100, seededRandomBytes('key-store'));
    expect(statSync(keys.path).size).toBe(1100 * SEED_BYTES);
    expect(statSync(keys.path).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const file = readFileSync(keys.path);
    for (const i of [0, 1023, 1024, 1099]) {
      const secret = keys.secretKey(i);
      expect(Buffer.from(secret.subarray(0, SEED_BYTES))).toEqual(file.subarray(i * SEED_BYTES, (i + 1) * SEED_BYTES));
      // tweetnacl's layout: the public half derives from the seed, and a signature verifies under publicKey(i).
      expect(nacl.sign.keyPair.fromSeed(secret.subarray(0, SEED_BYTES)).publicKey).toEqual(keys.publicKey(i));
      const message = new TextEncoder().encode(`entry ${i}`);
      expect(nacl.sign.detached.verify(message, nacl.sign.detached(message, secret), keys.publicKey(i))).toBe(true);
    }
    expect(new Set(Array.from({ length: 1100 }, (_, i) => Buffer.from(keys.publicKey(i)).toString('hex'))).size).toBe(1100);
    keys.close();
  });

  it('refuses to overwrite an existing key file, an index out of range and a read after close', () => {
    const dir = scratch();
    const keys = PopulationKeys.create(dir, 'secagg', 3, seededRandomBytes('key-store-2'));
    expect(() => PopulationKeys.create(dir, 'secagg', 3, seededRandomBytes('key-store-3'))).toThrow(/already exists/);
    expect(() => keys.secretKey(3)).toThrow(RangeError);
    expect(() => keys.publicKey(-1)).toThrow(RangeError);
    expect(() => PopulationKeys.create(dir, '../x', 1, seededRandomBytes('k'))).toThrow(RangeError);
    keys.close();
    expect(() => keys.secretKey(0)).toThrow(/closed/);
  });
});
