import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CoordinatorConfigSchema } from './config.js';
import { envName, leafPaths } from '@fedlora/config';

// infra/ (compose, Helm) configures the coordinator through FEDLORA_* overrides; a renamed
// config key must not silently turn those into no-ops.
const INFRA = new URL('../../../infra/', import.meta.url);
const coordinatorEnv = new Set(leafPaths(CoordinatorConfigSchema).map(envName));

describe('infra configuration', () => {
  it('compose.yaml overrides only keys the coordinator config has', () => {
    const compose = parse(readFileSync(new URL('compose.yaml', INFRA), 'utf8')) as { services: Record<string, { command: string[]; environment?: Record<string, string> }> };
    const env = Object.keys(compose.services.coordinator!.environment ?? {});
    expect(env.length).toBeGreaterThan(0);
    for (const name of env) expect(coordinatorEnv.has(name), name).toBe(true);
    expect(compose.services.coordinator!.command).toEqual(['coordinator', '--config', '/federation/coordinator.yaml']);
  });

  it('the Helm deployment overrides only keys the coordinator config has', () => {
    const template = readFileSync(new URL('helm/fedlora-coordinator/templates/deployment.yaml', INFRA), 'utf8');
    const names = [...template.matchAll(/name: (FEDLORA_[A-Z_]+)/g)].map((m) => m[1]!);
    expect(names).toEqual(['FEDLORA_LISTEN', 'FEDLORA_METRICS_LISTEN', 'FEDLORA_DATA_DIR']);
    for (const name of names) expect(coordinatorEnv.has(name), name).toBe(true);
  });

  it('the Helm values parse and name the federation secret', () => {
    const values = parse(readFileSync(new URL('helm/fedlora-coordinator/values.yaml', INFRA), 'utf8')) as Record<string, unknown>;
    expect(values).toMatchObject({ federationSecret: 'fedlora-federation', grpcPort: 7443, persistence: { accessMode: 'ReadWriteOnce' } });
  });
});
