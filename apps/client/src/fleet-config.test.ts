import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadFleetConfig, parseFleetSlice } from './fleet-config.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-config-'));
const defaults = { coordinator: '127.0.0.1:7000', insecure: true, training: { localSteps: 3 } };
const entry = (n: string) => ({ name: n, identity: { secretKeyFile: `keys/${n}.key` }, dataDir: `state/${n}`, data: { path: `data/${n}.txt` } });
const write = (name: string, doc: unknown) => {
  const p = join(dir, name);
  writeFileSync(p, stringify(doc));
  return p;
};

describe('fleet file', () => {
  it('lays each inline entry over the defaults, resolves paths against the fleet file, and reads config: entries', () => {
    write('one.yaml', { ...defaults, ...entry('solo'), coordinator: '127.0.0.1:7001' });
    const cfgs = loadFleetConfig(write('fleet.yaml', { defaults, institutions: [entry('a'), { ...entry('b'), training: { batchSize: 2 } }, { config: 'one.yaml' }] }));
    expect(cfgs.map((c) => [c.name, c.coordinator, c.dataDir])).toEqual([
      ['a', '127.0.0.1:7000', join(dir, 'state/a')],
      ['b', '127.0.0.1:7000', join(dir, 'state/b')],
      ['solo', '127.0.0.1:7001', join(dir, 'state/solo')],
    ]);
    expect(cfgs[1]!.training).toMatchObject({ localSteps: 3, batchSize: 2 }); // merged, not replaced
    expect(cfgs[0]!.identity.secretKeyFile).toBe(join(dir, 'keys/a.key'));
  });

  it('runs only the slice index:size of the institutions', () => {
    const p = write('sliced.yaml', { defaults, institutions: ['a', 'b', 'c', 'd', 'e'].map(entry) });
    expect(loadFleetConfig(p, parseFleetSlice('1:2')).map((c) => c.name)).toEqual(['c', 'd']);
    expect(loadFleetConfig(p, parseFleetSlice('2:2')).map((c) => c.name)).toEqual(['e']);
    expect(() => loadFleetConfig(p, parseFleetSlice('3:2'))).toThrow(/slice 3:2 is past the end of the 5 institutions/);
    expect(() => parseFleetSlice('1-2')).toThrow(/--slice: expected INDEX:SIZE/);
  });

  it('refuses two institutions sharing a dataDir (their ledgers) or a key, naming both', () => {
    const shared = { ...entry('b'), dataDir: 'state/a' };
    expect(() => loadFleetConfig(write('dup.yaml', { defaults, institutions: [entry('a'), shared] }))).toThrow(/institutions a and b have the same dataDir/);
    const key = { ...entry('b'), identity: { secretKeyFile: 'keys/a.key' } };
    expect(() => loadFleetConfig(write('dupkey.yaml', { defaults, institutions: [entry('a'), key] }))).toThrow(/institutions a and b have the same identity.secretKeyFile/);
  });

  it('names the entry whose config is invalid', () => {
    const bad = { ...entry('b'), data: {} };
    expect(() => loadFleetConfig(write('bad.yaml', { defaults, institutions: [entry('a'), bad] }))).toThrow(/institutions\[1\] \(b\).*data\.path/s);
    expect(() => loadFleetConfig(write('empty.yaml', { institutions: [] }))).toThrow(/expected institutions: a non-empty list/);
  });
});
