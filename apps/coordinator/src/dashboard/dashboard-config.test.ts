import { describe, expect, it } from 'vitest';
import { parse as yamlParse } from 'yaml';
import { ConfigError, isLoopbackHost, parseCoordinatorConfig } from '../config.js';

const BASE = yamlParse(`
federationId: fed-demo
listen: 127.0.0.1:7443
tls: {ca: pki/ca.crt, cert: pki/coordinator.crt, key: pki/coordinator.key}
dataDir: data
identity: {secretKeyFile: identities/coordinator.key.json}
rounds: {total: 3, minClients: 2}
`) as Record<string, unknown>;
const HASH = 'ab'.repeat(32);

function problems(doc: object, env: Record<string, string> = {}): string {
  try {
    parseCoordinatorConfig(doc, { env });
    return '';
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.join('\n');
  }
}

describe('coordinator config: dashboard', () => {
  it('is off by default and on loopback port 8080 when given empty', () => {
    expect(parseCoordinatorConfig(BASE).dashboard).toBeUndefined();
    expect(parseCoordinatorConfig({ ...BASE, dashboard: {} }).dashboard).toEqual({ listen: '127.0.0.1:8080', tls: false, auth: { tokens: [], certificates: [] } });
  });

  it('refuses a non-loopback address without TLS and auth, naming the key', () => {
    expect(problems({ ...BASE, dashboard: { listen: '0.0.0.0:8443' } })).toMatch(/dashboard\.listen: expected a loopback address .* received 0\.0\.0\.0:8443 without TLS and no auth/);
    expect(problems({ ...BASE, dashboard: { listen: '0.0.0.0:8443', tls: true } })).toMatch(/dashboard\.listen/);
    expect(problems({ ...BASE, dashboard: { listen: '0.0.0.0:8443', tls: true, auth: { tokens: [{ role: 'auditor', sha256: HASH }] } } })).toBe('');
  });

  it('needs HTTPS for client certificates, and checks roles and token hashes', () => {
    expect(problems({ ...BASE, dashboard: { auth: { certificates: [{ commonName: 'ops', role: 'operator' }] } } })).toMatch(/dashboard\.auth\.certificates: expected dashboard\.tls true/);
    expect(problems({ ...BASE, dashboard: { auth: { tokens: [{ role: 'admin', sha256: HASH }] } } })).toMatch(/dashboard\.auth\.tokens\.0\.role/);
    expect(problems({ ...BASE, dashboard: { auth: { tokens: [{ role: 'operator', sha256: 'secret' }] } } })).toMatch(/dashboard\.auth\.tokens\.0\.sha256/);
  });

  it('is configured from the environment like every other key', () => {
    const c = parseCoordinatorConfig(BASE, { env: { FEDLORA_DASHBOARD_LISTEN: '127.0.0.1:9999', FEDLORA_DASHBOARD_AUTH_TOKENS: `[{role: operator, sha256: "${HASH}"}]` } });
    expect(c.dashboard?.listen).toBe('127.0.0.1:9999');
    expect(c.dashboard?.auth.tokens).toEqual([{ role: 'operator', sha256: HASH }]);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.9.9.9', '[::1]', '::1', 'localhost']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '[::]', 'example.org', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});
