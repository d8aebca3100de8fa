import { seededRandomBytes } from '@fedlora/tensor';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadProjectFile, projectPlan } from './project-file.js';
import { writeFederation } from './write-federation.js';

const PROJECT = `
federationId: oncology-2026
coordinator:
  host: fl.hospital-a.example.org
  port: 8443
  altNames: [10.0.0.5]
institutions:
  - name: hospital-a
    dataPath: /srv/notes/train.jsonl
    jsonField: text
    budget: { epsilon: 8, delta: 1.0e-5 }
  - name: hospital-b
rounds: { total: 20, minClients: 2 }
strategy: { name: fedadam }
`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function writeProject(text: string): string {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-proj-'));
  dirs.push(d);
  writeFileSync(join(d, 'federation.yaml'), text);
  return join(d, 'federation.yaml');
}

describe('project files', () => {
  it('provisions a multi-host federation: certificate names, dial address, data and budgets', async () => {
    const file = writeProject(PROJECT);
    const out = join(file, '..', 'out');
    const m = await writeFederation(projectPlan(loadProjectFile(file)), out, { random: seededRandomBytes('proj') });
    const coord = parse(readFileSync(join(out, 'coordinator.yaml'), 'utf8'));
    expect(coord).toMatchObject({ federationId: 'oncology-2026', listen: '0.0.0.0:8443', rounds: { total: 20, minClients: 2 }, strategy: { name: 'fedadam' } });
    const a = parse(readFileSync(join(out, 'clients/hospital-a.yaml'), 'utf8'));
    expect(a).toMatchObject({ coordinator: 'fl.hospital-a.example.org:8443', data: { path: '/srv/notes/train.jsonl', format: 'jsonl', jsonField: 'text' }, privacy: { epsilon: 8, delta: 1e-5 } });
    const cert = new X509Certificate(readFileSync(join(out, 'pki/coordinator.crt')));
    expect(cert.checkHost('fl.hospital-a.example.org')).toBe('fl.hospital-a.example.org');
    expect(cert.checkIP('10.0.0.5')).toBe('10.0.0.5');
    expect(cert.checkIP('127.0.0.1')).toBeUndefined();
    expect(m.clients.find((c) => c.name === 'hospital-b')!.ship).toContain('pki/clients/hospital-b.key');
    expect(m.warnings.some((w) => w.startsWith('hospital-b: put the institution'))).toBe(true);
  });

  it('names the key path of a bad project file', () => {
    const file = writeProject(PROJECT.replace('port: 8443', 'port: 99999').replace('name: hospital-b', 'name: "bad name"'));
    expect(() => loadProjectFile(file)).toThrow(/coordinator\.port: .*received 99999/);
    expect(() => loadProjectFile(file)).toThrow(/institutions\.1\.name: expected 1..64 letters/);
  });

  it('refuses duplicate institution names', () => {
    const file = writeProject(PROJECT.replace('name: hospital-b', 'name: hospital-a'));
    expect(() => loadProjectFile(file)).toThrow(/expected unique names, received "hospital-a" twice/);
  });
});
