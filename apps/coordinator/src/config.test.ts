import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as yamlParse } from 'yaml';
import { ConfigError, loadCoordinatorConfig, parseCoordinatorConfig } from './config.js';

const KEY = Buffer.alloc(32, 5).toString('base64');
const GOOD = `
federationId: fed-demo
listen: 127.0.0.1:7443
tls:
  ca: pki/ca.crt
  cert: pki/coordinator.crt
  key: pki/coordinator.key
dataDir: data
identity:
  secretKeyFile: identities/coordinator.key.json
rounds:
  total: 3
  minClients: 2
clients:
  - name: inst-1
    publicKey: ${KEY}
  - name: inst-2
    publicKey: ${KEY}
`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function writeConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-ccfg-'));
  dirs.push(dir);
  const path = join(dir, 'coordinator.yaml');
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

describe('loadCoordinatorConfig', () => {
  it('loads a good file, fills defaults and resolves paths against the file', () => {
    const path = writeConfig(GOOD);
    const c = loadCoordinatorConfig(path, {});
    const dir = join(path, '..');
    expect(c.tls).toEqual({ ca: join(dir, 'pki/ca.crt'), cert: join(dir, 'pki/coordinator.crt'), key: join(dir, 'pki/coordinator.key'), requireClientCert: true });
    expect(c.dataDir).toBe(join(dir, 'data'));
    expect(c.rounds).toMatchObject({ total: 3, minClients: 2, deadlineSeconds: 600, localSteps: 10 });
    expect(c.strategy.name).toBe('fedavg');
    expect(c.privacy.mode).toBe('none');
    expect(c.model.lora).toEqual({ r: 8, alpha: 16, dropout: 0, variant: 'lora' });
    expect(c.insecure).toBe(false);
  });

  it('takes model.lora.variant ffa (FFA-LoRA) and names a wrong one', () => {
    const doc = parseYamlLike(GOOD);
    doc.model = { lora: { variant: 'ffa' } };
    expect(parseCoordinatorConfig(doc).model.lora).toEqual({ r: 8, alpha: 16, dropout: 0, variant: 'ffa' });
    doc.model = { lora: { variant: 'dora' } };
    expect(problems(() => parseCoordinatorConfig(doc))).toEqual([expect.stringMatching(/^coordinator config: model\.lora\.variant: expected one of .*lora.*ffa.*, received "dora"$/)]);
  });

  it('names the file, key path, expected and received value', () => {
    const path = writeConfig(GOOD.replace('minClients: 2', 'minClients: two'));
    expect(problems(() => loadCoordinatorConfig(path, {}))).toEqual(['coordinator.yaml: rounds.minClients: expected an integer >= 1, received "two"']);
  });

  it('reports every problem at once, including unknown keys (typos)', () => {
    const path = writeConfig(GOOD.replace('total: 3', 'total: 0\n  minClient: 2').replace('listen: 127.0.0.1:7443', 'listen: localhost'));
    const p = problems(() => loadCoordinatorConfig(path, {}));
    expect(p).toContain('coordinator.yaml: listen: expected host:port (e.g. 127.0.0.1:7443 or [::1]:7443), received "localhost"');
    expect(p).toContain('coordinator.yaml: rounds.total: expected an integer in 1..1000000, received 0');
    expect(p.some((l) => /rounds: unknown key "minClient"; expected one of total, minClients/.test(l))).toBe(true);
  });

  it('applies FEDLORA_<SECTION>_<KEY> environment overrides with typed values', () => {
    const c = loadCoordinatorConfig(writeConfig(GOOD), { FEDLORA_ROUNDS_TOTAL: '7', FEDLORA_STRATEGY_NAME: 'fedadam', FEDLORA_FEDERATION_ID: '123', FEDLORA_INSECURE: 'false' });
    expect(c.rounds.total).toBe(7);
    expect(c.strategy.name).toBe('fedadam');
    expect(c.federationId).toBe('123');
  });

  it('reads FEDLORA_COORDINATOR_* before FEDLORA_* and ignores FEDLORA_CLIENT_*', () => {
    const env = { FEDLORA_DATA_DIR: '/shared', FEDLORA_COORDINATOR_DATA_DIR: '/srv/coordinator', FEDLORA_CLIENT_ROUNDS_TOTAL: '99', FEDLORA_COORDINATOR_UPLOADS_MAX_BUFFERED_MB: '64' };
    const c = loadCoordinatorConfig(writeConfig(GOOD), env);
    expect(c.dataDir).toBe('/srv/coordinator');
    expect(c.rounds.total).not.toBe(99);
    expect(c.uploads.maxBufferedMB).toBe(64);
  });

  it('validates environment overrides like file values', () => {
    expect(problems(() => loadCoordinatorConfig(writeConfig(GOOD), { FEDLORA_ROUNDS_DEADLINE_SECONDS: '-5' }))).toEqual([
      'FEDLORA_ROUNDS_DEADLINE_SECONDS (overrides coordinator.yaml): rounds.deadlineSeconds: expected a number > 0, received -5',
    ]);
  });

  it('requires TLS unless insecure is set explicitly, and not both', () => {
    const noTls = GOOD.replace(/tls:\n( {2}.*\n){3}/, '');
    expect(problems(() => parseCoordinatorConfig(parseYamlLike(noTls)))).toEqual([
      'coordinator config: tls: expected {ca, cert, key} (or insecure: true for local development), received nothing',
    ]);
    expect(parseCoordinatorConfig({ ...parseYamlLike(noTls), insecure: true }).insecure).toBe(true);
    expect(problems(() => parseCoordinatorConfig({ ...parseYamlLike(GOOD), insecure: true }))).toEqual(['coordinator config: insecure: expected false when tls is configured, received true']);
  });

  it('refuses requireClientCert: false with enrolled clients (it would drop the certificate-name binding), allows it without', () => {
    const doc = parseYamlLike(GOOD);
    (doc.tls as Record<string, unknown>).requireClientCert = false;
    expect(problems(() => parseCoordinatorConfig(doc))).toEqual([
      "coordinator config: tls.requireClientCert: expected true when clients are enrolled (each institution's requests are bound to the client certificate issued to its name), received false with 2 enrolled client(s); remove the key or set it to true",
    ]);
    expect(parseCoordinatorConfig({ ...doc, clients: [] }).tls?.requireClientCert).toBe(false);
  });

  it('bounds upload streams: idle and total deadlines default to 60 s and 15 min and must be positive', () => {
    expect(parseCoordinatorConfig(parseYamlLike(GOOD)).uploads).toEqual({ maxBufferedMB: 512, idleSeconds: 60, maxStreamSeconds: 900 });
    expect(problems(() => parseCoordinatorConfig({ ...parseYamlLike(GOOD), uploads: { idleSeconds: 0 } }))).toEqual(['coordinator config: uploads.idleSeconds: expected a number > 0, received 0']);
  });

  it('checks cross-field rules: distributed DP needs SecAgg, enrolled names are unique', () => {
    const doc = parseYamlLike(GOOD);
    doc.privacy = { mode: 'distributed', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5 };
    doc.clients = [{ name: 'a', publicKey: KEY }, { name: 'a', publicKey: KEY }];
    const p = problems(() => parseCoordinatorConfig(doc));
    expect(p).toContain('coordinator config: secagg.enabled: expected true when privacy.mode is "distributed" (noise is split across clients), received false');
    expect(p).toContain('coordinator config: clients.1.name: expected a unique name, received duplicate "a"');
  });

  it('refuses SecAgg+ with rounds that could open with fewer than 3 clients', () => {
    const doc = parseYamlLike(GOOD);
    doc.secagg = { enabled: true };
    expect(problems(() => parseCoordinatorConfig(doc))).toContain('coordinator config: rounds.minClients: expected at least 3 when secagg.enabled (SecAgg+ needs a cohort of 3 or more), received 2');
  });

  it('rejects a bad public key, an unknown strategy and central DP without parameters', () => {
    const doc = parseYamlLike(GOOD);
    (doc.clients as Array<Record<string, unknown>>)[0]!.publicKey = 'bm90LWEta2V5';
    doc.strategy = { name: 'fedsgd' };
    doc.privacy = { mode: 'central' };
    const p = problems(() => parseCoordinatorConfig(doc));
    expect(p).toContain('coordinator config: clients.0.publicKey: expected an Ed25519 public key (32 bytes, base64), received "bm90LWEta2V5"');
    expect(p).toContain('coordinator config: strategy.name: expected one of "fedavg", "fedadam", "fedyogi", "fedadagrad", "fedprox", received "fedsgd"');
    expect(p).toContain('coordinator config: privacy.mode: expected clipNorm, delta and either noiseMultiplier or epsilon (the budget) to be set for a "central" or "distributed" mode, received a mode without them');
  });

  it('explains unreadable files and YAML syntax errors with a position', () => {
    expect(() => loadCoordinatorConfig('/nonexistent/coordinator.yaml', {})).toThrow(/cannot read the config file \(ENOENT\)/);
    expect(() => loadCoordinatorConfig(writeConfig('rounds: [1, 2\nfoo: : bar'), {})).toThrow(/coordinator.yaml: not valid YAML at line \d+, column \d+/);
    expect(() => loadCoordinatorConfig(writeConfig('- a\n- b\n'), {})).toThrow(/expected a mapping of keys at the top level, received a list/);
  });
});

function parseYamlLike(text: string): Record<string, unknown> {
  return yamlParse(text) as Record<string, unknown>;
}

describe('privacy.adaptiveClipping', () => {
  const base = (privacy: Record<string, unknown>, secagg?: Record<string, unknown>) => ({
    federationId: 'f',
    insecure: true,
    dataDir: '/tmp/x',
    identity: { secretKeyFile: '/tmp/k' },
    rounds: { total: 1, minClients: 3 },
    privacy,
    ...(secagg ? { secagg } : {}),
  });

  it("turns on with the paper's defaults for central noise", async () => {
    const { parseCoordinatorConfig } = await import('./config.js');
    const cfg = parseCoordinatorConfig(base({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, adaptiveClipping: {} }));
    expect(cfg.privacy.adaptiveClipping).toEqual({ targetQuantile: 0.5, learningRate: 0.2 });
    const off = parseCoordinatorConfig(base({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, adaptiveClipping: false }));
    expect(off.privacy.adaptiveClipping).toBeUndefined();
  });

  it('is accepted with distributed noise over secure aggregation', async () => {
    const { parseCoordinatorConfig } = await import('./config.js');
    const cfg = parseCoordinatorConfig(base({ mode: 'distributed', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, adaptiveClipping: { targetQuantile: 0.7 } }, { enabled: true }));
    expect(cfg.privacy.adaptiveClipping).toMatchObject({ targetQuantile: 0.7 });
  });

  it('refuses it with central noise and secure aggregation, which hides the bits', async () => {
    const { parseCoordinatorConfig } = await import('./config.js');
    expect(() => parseCoordinatorConfig(base({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, adaptiveClipping: {} }, { enabled: true }))).toThrow(
      /privacy.adaptiveClipping: expected secagg.enabled false with central noise and adaptive clipping/,
    );
  });

  it('names a bit noise too small for the noise multiplier and a quantile out of range', async () => {
    const { parseCoordinatorConfig } = await import('./config.js');
    expect(() => parseCoordinatorConfig(base({ mode: 'central', clipNorm: 1, noiseMultiplier: 2, delta: 1e-5, adaptiveClipping: { bitNoiseStd: 0.5 } }))).toThrow(
      /privacy.adaptiveClipping.bitNoiseStd: expected more than privacy.noiseMultiplier \/ 2 = 1/,
    );
    expect(() => parseCoordinatorConfig(base({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5, adaptiveClipping: { targetQuantile: 1.5 } }))).toThrow(/privacy.adaptiveClipping/);
  });
});
