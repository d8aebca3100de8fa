import { seededRandomBytes } from '@fedlora/tensor';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterEach, describe, expect, it } from 'vitest';
import { decodePublicKey, encodePublicKey, generateIdentity, loadIdentity, saveIdentity, wipeIdentity } from './identity.js';

// RFC 8032 section 7.1, TEST 1.
const RFC_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC_SIG_EMPTY =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-id-'));
  dirs.push(d);
  return d;
}

describe('Ed25519 identities', () => {
  it('loads a raw base64 seed and reproduces the RFC 8032 test vector', () => {
    const path = join(tempDir(), 'rfc.key');
    writeFileSync(path, Buffer.from(RFC_SEED, 'hex').toString('base64'), { mode: 0o600 });
    const id = loadIdentity(path);
    expect(Buffer.from(id.publicKey).toString('hex')).toBe(RFC_PUBLIC);
    expect(Buffer.from(nacl.sign.detached(new Uint8Array(0), id.secretKey)).toString('hex')).toBe(RFC_SIG_EMPTY);
  });

  it('saves with mode 0600 and loads back the same key pair and name', () => {
    const path = join(tempDir(), 'hospital-a.key.json');
    const id = generateIdentity('hospital-a', seededRandomBytes('id'));
    saveIdentity(path, id);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const back = loadIdentity(path);
    expect(back.name).toBe('hospital-a');
    expect(back.publicKey).toEqual(id.publicKey);
    expect(back.secretKey).toEqual(id.secretKey);
    expect(JSON.parse(readFileSync(path, 'utf8')).publicKey).toBe(encodePublicKey(id.publicKey));
  });

  it('refuses a key file that others can read, naming the fix', () => {
    const path = join(tempDir(), 'k.json');
    saveIdentity(path, generateIdentity('x', seededRandomBytes(1)));
    chmodSync(path, 0o644);
    expect(() => loadIdentity(path)).toThrow(/permissions 644 .* expected 600 \(run: chmod 600/);
    expect(loadIdentity(path, { allowInsecurePermissions: true }).name).toBe('x');
  });

  it('refuses a damaged file whose public key does not match its seed', () => {
    const path = join(tempDir(), 'k.json');
    saveIdentity(path, generateIdentity('x', seededRandomBytes(2)));
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    doc.publicKey = encodePublicKey(new Uint8Array(32).fill(9));
    writeFileSync(path, JSON.stringify(doc), { mode: 0o600 });
    expect(() => loadIdentity(path)).toThrow(/does not match the secret seed/);
  });

  it('rejects malformed public keys and wrong-length secrets with the received value', () => {
    expect(() => decodePublicKey('AAAA')).toThrow(/expected 32 bytes of base64 \(Ed25519\), received "AAAA"/);
    const path = join(tempDir(), 'short.key');
    writeFileSync(path, Buffer.alloc(20).toString('base64'), { mode: 0o600 });
    expect(() => loadIdentity(path)).toThrow(/received 20 bytes/);
    expect(() => loadIdentity(join(tempDir(), 'missing'))).toThrow(/cannot read it \(ENOENT\)/);
  });

  it('wipes the secret key in memory', () => {
    const id = generateIdentity('x', seededRandomBytes(3));
    wipeIdentity(id);
    expect(id.secretKey.every((b) => b === 0)).toBe(true);
  });
});
