/**
 * The fleet file of `fedlora client --fleet FILE`: many institutions run from one process, each
 * a whole client config (its own name, identity key, TLS files, member list, data, budget and
 * dataDir with its ledger). An entry is either `config: PATH` (a client config file, e.g. one
 * `fedlora provision` wrote) or an inline config, laid over the file's `defaults`:
 *
 *   defaults:                    # any client-config keys shared by the inline entries
 *     coordinator: coord.example.org:7443
 *     federationId: fed-1
 *     tls: { ca: pki/ca.crt, serverName: coord.example.org }
 *     membership: { file: members.json, authorityKey: ... }
 *   institutions:
 *     - config: clients/inst-1.yaml
 *     - name: inst-2
 *       identity: { secretKeyFile: identities/inst-2.key.json }
 *       tls: { cert: pki/clients/inst-2.crt, key: pki/clients/inst-2.key }
 *       dataDir: data/inst-2
 *       data: { path: data/inst-2/train.txt }
 *
 * Paths are relative to the file holding them. FEDLORA_* environment overrides are NOT applied
 * to fleet entries (one variable would set every institution's data path or key to one value).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '@fedlora/config';
import type { ClientConfig } from './config.js';
import { loadClientConfig, parseClientConfig } from './config.js';

/** Which part of the fleet this process runs: entries [index * size, (index + 1) * size) (a Kubernetes Indexed Job's pod). */
export interface FleetSlice {
  index: number;
  size: number;
}

/** Parses `--slice INDEX:SIZE`. */
export function parseFleetSlice(v: string): FleetSlice {
  const m = /^(\d+):(\d+)$/.exec(v);
  const index = m ? Number(m[1]) : Number.NaN;
  const size = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isSafeInteger(index) || !Number.isSafeInteger(size) || size < 1) throw new RangeError(`--slice: expected INDEX:SIZE with INDEX >= 0 and SIZE >= 1 (e.g. 3:50), received ${JSON.stringify(v)}`);
  return { index, size };
}

/** Reads and validates a fleet file (every entry as a client config); throws ConfigError naming the entry and what is wrong. */
export function loadFleetConfig(path: string, slice?: FleetSlice): ClientConfig[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the fleet file: ${(err as Error).message.split('\n')[0]}`);
  }
  const base = dirname(resolve(path));
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(`${path}: expected a mapping with an institutions list, received ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  const { defaults = {}, institutions, ...rest } = doc as Record<string, unknown>;
  if (Object.keys(rest).length) throw new ConfigError(`${path}: unknown keys ${Object.keys(rest).map((k) => JSON.stringify(k)).join(', ')}: expected defaults and institutions`);
  if (!Array.isArray(institutions) || institutions.length === 0) throw new ConfigError(`${path}: expected institutions: a non-empty list of entries (config: FILE, or an inline client config)`);
  if (typeof defaults !== 'object' || defaults === null || Array.isArray(defaults)) throw new ConfigError(`${path}: defaults: expected a mapping of client-config keys`);
  const chosen = slice ? institutions.slice(slice.index * slice.size, (slice.index + 1) * slice.size) : institutions;
  const first = slice ? slice.index * slice.size : 0;
  if (chosen.length === 0) throw new ConfigError(`${path}: slice ${slice!.index}:${slice!.size} is past the end of the ${institutions.length} institutions`);
  const configs = chosen.map((entry: unknown, i) => {
    const label = `${path}: institutions[${first + i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(`${label}: expected config: FILE or an inline client config`);
    const e = entry as Record<string, unknown>;
    if ('config' in e) {
      if (Object.keys(e).length !== 1 || typeof e.config !== 'string') throw new ConfigError(`${label}: expected config: FILE alone (put overrides in that file)`);
      return loadClientConfig(resolve(base, e.config), {});
    }
    return parseClientConfig(deepMerge(defaults as Record<string, unknown>, e), { label: `${label}${typeof e.name === 'string' ? ` (${e.name})` : ''}`, baseDir: base, env: {} });
  });
  checkDistinct(path, configs);
  return configs;
}

/** Every institution needs its own name, key and dataDir (its ledgers); one shared model means one base model and backend. */
function checkDistinct(path: string, configs: ClientConfig[]): void {
  const seen = new Map<string, string>();
  for (const c of configs) {
    for (const [what, value] of [
      ['name', c.name],
      ['identity.secretKeyFile', c.identity.secretKeyFile],
      ['dataDir', c.dataDir],
    ] as const) {
      const prior = seen.get(`${what}\0${value}`);
      if (prior) throw new ConfigError(`${path}: institutions ${prior} and ${c.name} have the same ${what} (${value}): each institution needs its own`);
      seen.set(`${what}\0${value}`, c.name);
    }
    const f = configs[0]!;
    if ((c.model.baseModelDir ?? '') !== (f.model.baseModelDir ?? '') || c.training.backend !== f.training.backend) {
      throw new ConfigError(`${path}: ${c.name} names another base model or backend than ${f.name}: a fleet shares one base model (run another fleet for the other)`);
    }
  }
}

/** `over` laid on `under`: mappings merged key by key, anything else replaced. */
function deepMerge(under: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...under };
  for (const [k, v] of Object.entries(over)) {
    const u = out[k];
    out[k] = isMapping(u) && isMapping(v) ? deepMerge(u, v) : v;
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
