import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadClientConfig, parseClientConfig, reconnectRetries } from './config.js';

const GOOD = `
name: inst-1
federationId: fed-demo
coordinator: 127.0.0.1:7443
tls:
  ca: ../pki/ca.crt
  cert: ../pki/clients/inst-1.crt
  key: ../pki/clients/inst-1.key
identity:
  secretKeyFile: ../identities/inst-1.key.json
dataDir: ../data/inst-1
data:
  path: ../data/inst-1/train.txt
privacy:
  epsilon: 8
  delta: 1.0e-5
`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function writeConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-clcfg-'));
  dirs.push(dir);
  const path = join(dir, 'inst-1.yaml');
  writeFileSync(path, text);
  return path;
}
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
const base = (over: Record<string, unknown> = {}) => ({
  name: 'inst-1',
  coordinator: 'coord.example.org:7443',
  insecure: true,
  identity: { secretKeyFile: 'k.json' },
  dataDir: 'd',
  data: { path: 'train.txt' },
  ...over,
});

describe('loadClientConfig', () => {
  it('loads a good file, fills defaults and resolves paths against the file', () => {
    const path = writeConfig(GOOD);
    const c = loadClientConfig(path, {});
    const parent = join(path, '..', '..');
    expect(c.tls).toEqual({ ca: join(parent, 'pki/ca.crt'), cert: join(parent, 'pki/clients/inst-1.crt'), key: join(parent, 'pki/clients/inst-1.key') });
    expect(c.data).toEqual({ path: join(parent, 'data/inst-1/train.txt'), format: 'auto', evalFraction: 0.1, privacyUnit: 'document' });
    expect(c.privacy).toEqual({ epsilon: 8, delta: 1e-5, policy: { minMode: 'distributed', unverifiedSampling: 'account-as-one' } });
    expect(c.reconnect).toEqual({ initialBackoffMs: 500, maxBackoffMs: 30_000, giveUpAfterSeconds: 3600 });
    expect(c.training.backend).toBe('auto');
  });

  it('names the key path, the expected and the received value', () => {
    const path = writeConfig(GOOD.replace('epsilon: 8', 'epsilon: lots'));
    expect(problems(() => loadClientConfig(path, {}))).toEqual(['inst-1.yaml: privacy.epsilon: expected a number > 0, received "lots"']);
  });

  it('reads FEDLORA_CLIENT_* before FEDLORA_* and ignores FEDLORA_COORDINATOR_*', () => {
    const env = { FEDLORA_DATA_DIR: '/shared', FEDLORA_CLIENT_DATA_DIR: '/srv/client', FEDLORA_PRIVACY_DELTA: '1e-3', FEDLORA_COORDINATOR_PRIVACY_DELTA: '1e-4' };
    const c = loadClientConfig(writeConfig(GOOD), env);
    expect(c.dataDir).toBe('/srv/client');
    expect(c.privacy!.delta).toBe(1e-3);
  });

  it('turns reconnect.giveUpAfterSeconds into a retry count whose capped backoff covers it', () => {
    // 500 ms doubling, capped at 30 s: 0.5+1+2+4+8+16 = 31.5 s after 6 failures, then 30 s each.
    expect(reconnectRetries(31_500, 500, 30_000)).toBe(6);
    expect(reconnectRetries(31_501, 500, 30_000)).toBe(7);
    expect(reconnectRetries(3_600_000, 500, 30_000)).toBe(6 + Math.ceil((3_600_000 - 31_500) / 30_000));
    expect(reconnectRetries(0, 500, 30_000)).toBe(Number.POSITIVE_INFINITY);
  });

  it('applies environment overrides (FEDLORA_DATA_PATH, FEDLORA_PRIVACY_EPSILON)', () => {
    const c = loadClientConfig(writeConfig(GOOD), { FEDLORA_DATA_PATH: '/srv/notes.jsonl', FEDLORA_DATA_FORMAT: 'jsonl', FEDLORA_DATA_JSON_FIELD: 'text', FEDLORA_PRIVACY_EPSILON: '2.5' });
    expect(c.data).toMatchObject({ path: '/srv/notes.jsonl', format: 'jsonl', jsonField: 'text' });
    expect(c.privacy!.epsilon).toBe(2.5);
  });

  it('requires TLS unless insecure, and cert with key for mTLS', () => {
    expect(problems(() => parseClientConfig(base({ insecure: false })))).toEqual(['client config: tls: expected {ca, cert, key} (or insecure: true for local development), received nothing']);
    expect(problems(() => parseClientConfig(base({ insecure: false, tls: { ca: 'ca.crt', cert: 'c.crt' } })))).toEqual([
      'client config: tls.key: expected both cert and key (mTLS) or neither, received only one',
    ]);
  });

  it('rejects an out-of-range budget, a bad coordinator address and JSONL without a field', () => {
    const p = problems(() => parseClientConfig(base({ coordinator: 'coord.example.org', privacy: { epsilon: 1, delta: 1 }, data: { path: 'x.jsonl', format: 'jsonl' } })));
    expect(p).toContain('client config: coordinator: expected host:port of the coordinator (e.g. coord.example.org:7443), received "coord.example.org"');
    expect(p).toContain('client config: privacy.delta: expected a number in (0, 1), received 1');
  });

  it('needs a field name for JSONL data', () => {
    expect(problems(() => parseClientConfig(base({ data: { path: 'x.jsonl', format: 'jsonl' } })))).toEqual([
      'client config: data.jsonField: expected a field name when data.format is "jsonl", received nothing',
    ]);
  });

  it('takes the privacy unit (document by default) and needs the field for a field unit', () => {
    expect(parseClientConfig(base({ data: { path: 'x.jsonl', format: 'jsonl', jsonField: 'note', privacyUnit: 'field', privacyUnitField: 'patient_id' } })).data).toMatchObject({ privacyUnit: 'field', privacyUnitField: 'patient_id' });
    expect(problems(() => parseClientConfig(base({ data: { path: 'x.jsonl', format: 'jsonl', jsonField: 'note', privacyUnit: 'field' } })))).toEqual([
      'client config: data.privacyUnitField: expected the JSONL field naming a unit (e.g. patient_id) with privacyUnit "field", received nothing',
    ]);
    expect(problems(() => parseClientConfig(base({ data: { path: 'x.txt', privacyUnitField: 'patient_id' } })))).toEqual(['client config: data.privacyUnit: expected "field" with privacyUnitField, received "document"']);
  });

  it('rejects unknown keys with the list of known ones', () => {
    const p = problems(() => parseClientConfig(base({ dpSgd: { clipNorm: 1, noiseMultiplier: 1, sigma: 2 } })));
    expect(p).toEqual(['client config: dpSgd: unknown key "sigma"; expected one of clipNorm, noiseMultiplier, epsilon, delta, rounds, maxSequencesPerUnit, perExampleGradients, reuseOnRetry']);
  });
});

describe('privacy.policy (what the institution demands of every plan)', () => {
  it('defaults to distributed noise and q = 1 for unverifiable sampling; takes stricter bounds', () => {
    expect(parseClientConfig(base({ privacy: { epsilon: 8, delta: 1e-5, policy: { minMode: 'central', minNoiseMultiplier: 0.9, maxClipNorm: 1, unverifiedSampling: 'refuse' } } })).privacy!.policy).toEqual({
      minMode: 'central',
      minNoiseMultiplier: 0.9,
      maxClipNorm: 1,
      unverifiedSampling: 'refuse',
    });
    expect(problems(() => parseClientConfig(base({ privacy: { epsilon: 8, delta: 1e-5, policy: { minMode: 'none' } } })))[0]).toMatch(/^client config: privacy\.policy\.minMode: /);
  });
});

describe('dpSgd record-level budget', () => {
  it('takes epsilon and delta, or shares privacy.delta', () => {
    expect(parseClientConfig(base({ dpSgd: { clipNorm: 1, noiseMultiplier: 1, epsilon: 3, delta: 1e-6 } })).dpSgd).toEqual({ clipNorm: 1, noiseMultiplier: 1, epsilon: 3, delta: 1e-6 });
    expect(parseClientConfig(base({ privacy: { epsilon: 10, delta: 1e-5 }, dpSgd: { clipNorm: 1, noiseMultiplier: 1, epsilon: 3 } })).dpSgd?.epsilon).toBe(3);
  });

  it('takes dpSgd.epsilon alone (budget first: delta 1e-5 by default, noise calibrated), and names the missing half of the budget', () => {
    expect(parseClientConfig(base({ dpSgd: { epsilon: 8 } })).dpSgd).toEqual({ epsilon: 8 });
    expect(problems(() => parseClientConfig(base({ dpSgd: { clipNorm: 1 } })))).toEqual([
      'client config: dpSgd.epsilon: expected the budget epsilon (the noise is calibrated from it) or a noiseMultiplier, received neither',
    ]);
    expect(problems(() => parseClientConfig(base({ dpSgd: { clipNorm: 1, noiseMultiplier: 1, delta: 1e-5 } })))).toEqual([
      'client config: dpSgd.epsilon: expected the record-level budget epsilon (> 0) with dpSgd.delta, received nothing',
    ]);
  });
});

describe('membership and secure-aggregation floors (issue 16, finding 1)', () => {
  it('resolves the member list path, keeps the pinned authority key, and fills the floors with their defaults', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const c = loadClientConfig(writeConfig(`${GOOD}membership:\n  file: ../members.json\n  authorityKey: ${key}\n`), {});
    expect(c.membership?.authorityKey).toBe(key);
    expect(c.membership?.file.endsWith('/members.json')).toBe(true);
    expect(c.secagg).toEqual({ minCohort: 3, minSurvivors: 2, corruptFraction: 0, securityBits: 40 });
  });

  it('names a malformed authority key and floors outside their range', () => {
    const p = problems(() => loadClientConfig(writeConfig(`${GOOD}membership:\n  file: ../members.json\n  authorityKey: not-a-key\nsecagg:\n  minSurvivors: 1\n  corruptFraction: 0.5\n`), {}));
    expect(p.join('\n')).toMatch(/membership\.authorityKey/);
    expect(p.join('\n')).toMatch(/secagg\.minSurvivors/);
    expect(p.join('\n')).toMatch(/secagg\.corruptFraction/);
  });
});
