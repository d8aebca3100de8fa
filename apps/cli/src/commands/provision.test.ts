import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { PROJECT_FILE_EXAMPLE, register } from './provision.js';

const BIN = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function fedlora(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('fedlora provision', () => {
  it('--json prints exactly one JSON document describing what was written; warnings go to stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlora-cli-prov-'));
    dirs.push(dir);
    const r = fedlora(['provision', '--clients', '2', '--rounds', '4', '--out', join(dir, 'fed'), '--federation-id', 'fed-cli', '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ federationId: 'fed-cli', insecure: false, coordinator: { config: 'coordinator.yaml', dial: '127.0.0.1:7443' } });
    expect(doc.clients.map((c: { config: string }) => c.config)).toEqual(['clients/inst-1.yaml', 'clients/inst-2.yaml']);
    expect(r.stderr).toMatch(/warning: pki\/ca.key can enrol new members/);
  });

  it('rejects a bad value naming the flag', async () => {
    const { program, err } = provisionProgram();
    await expect(program.parseAsync(['node', 'fedlora', 'provision', '--clients', 'zero', '--out', join(tmpdir(), 'never')])).rejects.toThrow();
    expect(err.join('')).toMatch(/--clients expects an integer in \[1, 1000\], received "zero"/);
  });

  it('--help documents the local and project forms', async () => {
    const { program, out } = provisionProgram();
    await expect(program.parseAsync(['node', 'fedlora', 'provision', '--help'])).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
    expect(out.join('')).toMatch(/--project <file>/);
    expect(out.join('')).toMatch(/--insecure/);
    expect(out.join('')).toContain('A project file (--project) describes a federation across hosts');
    expect(out.join('')).toContain('  institutions:\n    - name: hospital-a');
  });

  it('the project file example of --help provisions a federation across hosts as written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlora-cli-prov-project-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'federation.yaml'), PROJECT_FILE_EXAMPLE);
    const { program } = provisionProgram();
    await program.parseAsync(['node', 'fedlora', 'provision', '--project', join(dir, 'federation.yaml'), '--out', join(dir, 'fed'), '--json']);
    const client = readFileSync(join(dir, 'fed', 'clients', 'hospital-a.yaml'), 'utf8');
    expect(client).toMatch(/^coordinator: fl\.hospital-a\.example\.org:7443$/m);
    expect(client).toMatch(/path: \/srv\/notes\/train\.jsonl/);
    expect(readFileSync(join(dir, 'fed', 'coordinator.yaml'), 'utf8')).toMatch(/^listen: 0\.0\.0\.0:7443$/m);
  });
});

/** Only this command, in-process, with output captured (spawning the CLI once above is enough). */
function provisionProgram(): { program: Command; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command('fedlora').exitOverride().configureOutput({ writeOut: (s) => void out.push(s), writeErr: (s) => void err.push(s) });
  register(program);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeOut: (s) => void out.push(s), writeErr: (s) => void err.push(s) });
  return { program, out, err };
}
