import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, appliedEnvOverrides, applyEnvOverrides, envName, formatIssues, unknownEnvNames, validateConfig, leafPaths, schemaAt, scopedEnvName } from './config-loader.js';

const schema = z.strictObject({
  dataDir: z.string(),
  rounds: z.strictObject({ minClients: z.int().default(2), tags: z.array(z.string()).optional() }).prefault({}),
  name: z.string().optional(),
});

describe('config loader', () => {
  it('derives SCREAMING_SNAKE environment names from key paths', () => {
    expect(leafPaths(schema).map(envName)).toEqual(['FEDLORA_DATA_DIR', 'FEDLORA_ROUNDS_MIN_CLIENTS', 'FEDLORA_ROUNDS_TAGS', 'FEDLORA_NAME']);
  });

  it('parses override values as YAML scalars except where a string is expected', () => {
    const { doc, applied } = applyEnvOverrides({ dataDir: '/a' }, schema, { FEDLORA_ROUNDS_MIN_CLIENTS: '3', FEDLORA_NAME: '007', FEDLORA_ROUNDS_TAGS: '[x, y]', OTHER: '1' });
    expect(doc).toEqual({ dataDir: '/a', rounds: { minClients: 3, tags: ['x', 'y'] }, name: '007' });
    expect(applied).toEqual(['FEDLORA_ROUNDS_MIN_CLIENTS', 'FEDLORA_ROUNDS_TAGS', 'FEDLORA_NAME']);
  });

  it('reads the scoped name of a key first, and only for its own scope', () => {
    expect(scopedEnvName(['dataDir'], 'CLIENT')).toBe('FEDLORA_CLIENT_DATA_DIR');
    const env = { FEDLORA_DATA_DIR: '/shared', FEDLORA_CLIENT_DATA_DIR: '/client', FEDLORA_COORDINATOR_ROUNDS_MIN_CLIENTS: '9' };
    const client = applyEnvOverrides({}, schema, env, 'CLIENT');
    expect(client.doc).toEqual({ dataDir: '/client' });
    expect(client.applied).toEqual(['FEDLORA_CLIENT_DATA_DIR']);
    const coordinator = applyEnvOverrides({}, schema, env, 'COORDINATOR');
    expect(coordinator.doc).toEqual({ dataDir: '/shared', rounds: { minClients: 9 } });
    expect(appliedEnvOverrides(schema, env, 'COORDINATOR')).toEqual(['FEDLORA_DATA_DIR', 'FEDLORA_COORDINATOR_ROUNDS_MIN_CLIENTS']);
    // Without a scope, scoped names are ignored.
    expect(applyEnvOverrides({}, schema, env).doc).toEqual({ dataDir: '/shared' });
  });

  it('lists the known keys of an object behind z.preprocess when an unknown key is found there', () => {
    const inner = z.strictObject({ quantile: z.number().default(0.5), rate: z.number().default(0.2) });
    const s = z.strictObject({ adaptive: z.preprocess((v) => (v === false ? undefined : v), inner.optional()) });
    const r = s.safeParse({ adaptive: { quantlie: 0.4 } });
    expect(r.success).toBe(false);
    expect(formatIssues(s, r.error!.issues)).toEqual(['adaptive: unknown key "quantlie"; expected one of quantile, rate']);
  });

  it('blames a bad value from the environment on its variable', () => {
    const withIt = () => validateConfig('c.yaml', { dataDir: '/a' }, schema, { FEDLORA_ROUNDS_MIN_CLIENTS: 'abc' }, [], '/');
    expect(withIt).toThrow(ConfigError);
    try {
      withIt();
    } catch (e) {
      expect((e as ConfigError).problems).toEqual(['FEDLORA_ROUNDS_MIN_CLIENTS (overrides c.yaml): rounds.minClients: expected a number, received "abc"']);
    }
  });

  it('names FEDLORA_* variables that match no key, with the closest known name', () => {
    const known = leafPaths(schema).map((p) => envName(p));
    const env = { FEDLORA_ROUNDS_MIN_CLIENT: '3', FEDLORA_BACKEND: 'wasm', FEDLORA_DATA_DIR: '/d', FEDLORA_ZZZZZZZZZZZZ: '1', PATH: '/bin' };
    expect(unknownEnvNames(env, known)).toEqual([{ name: 'FEDLORA_ROUNDS_MIN_CLIENT', didYouMean: 'FEDLORA_ROUNDS_MIN_CLIENTS' }, { name: 'FEDLORA_ZZZZZZZZZZZZ' }]);
  });

  it('does not modify the document it is given', () => {
    const original = { dataDir: '/a', rounds: { minClients: 1 } };
    applyEnvOverrides(original, schema, { FEDLORA_ROUNDS_MIN_CLIENTS: '5' });
    expect(original.rounds.minClients).toBe(1);
  });

  it('finds the schema at a key path through wrappers and arrays', () => {
    expect(schemaAt(schema, ['rounds', 'minClients'])).toBeDefined();
    expect(schemaAt(schema, ['rounds', 'tags', 0])).toBeDefined();
    expect(schemaAt(schema, ['nope', 'x'])).toBeUndefined();
  });
});
