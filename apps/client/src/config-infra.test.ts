import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ClientConfigSchema } from './config.js';
import { envName, leafPaths } from '@fedlora/config';

// infra/compose.yaml points provisioned client configs at the compose coordinator with FEDLORA_* overrides.
const clientEnv = new Set(leafPaths(ClientConfigSchema).map(envName));

describe('infra configuration', () => {
  it('compose.yaml client services override only keys the client config has', () => {
    const compose = parse(readFileSync(new URL('../../../infra/compose.yaml', import.meta.url), 'utf8')) as {
      services: Record<string, { command: string[]; environment?: Record<string, string> }>;
    };
    const clients = Object.entries(compose.services).filter(([, s]) => s.command[0] === 'client');
    expect(clients.map(([name]) => name)).toEqual(['inst-1', 'inst-2']);
    for (const [, s] of clients) for (const name of Object.keys(s.environment ?? {})) expect(clientEnv.has(name), name).toBe(true);
  });
});
