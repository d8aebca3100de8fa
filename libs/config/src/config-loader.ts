/**
 * Loading a YAML config through a zod schema: environment overrides, messages that name the
 * file, the key path, the expected and the received value, and paths resolved against the
 * config file's directory (so a provisioned directory can be moved as a whole).
 *
 * Environment overrides: every leaf key of the schema can be set with
 * `FEDLORA_<SECTION>_<KEY>` in SCREAMING_SNAKE case, e.g. `FEDLORA_ROUNDS_MIN_CLIENTS=3` sets
 * `rounds.minClients`, `FEDLORA_DATA_DIR=/var/lib/fedlora` sets `dataDir`. Values are parsed as
 * YAML scalars (numbers, booleans, [lists]) except where the schema expects a string.
 *
 * Scoped overrides: the coordinator and the client share some key names (`dataDir`, `tls.cert`,
 * `privacy.delta`, ...), so one exported `FEDLORA_DATA_DIR` would point both processes on a host
 * at the same directory. Each app therefore also reads `FEDLORA_<SCOPE>_<SECTION>_<KEY>` with its
 * scope (`COORDINATOR` or `CLIENT`), e.g. `FEDLORA_CLIENT_DATA_DIR`, which only that app reads
 * and which wins over the unscoped name. Unscoped names keep working (one process per container).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';

/** A config file that cannot be read, parsed or validated; the message lists every problem. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    readonly problems: string[] = [message],
  ) {
    super(message);
  }
}

/** The environment variable prefix of overrides. */
export const ENV_PREFIX = 'FEDLORA_';

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; in?: z.ZodType; out?: z.ZodType; options?: z.ZodType[] };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

const WRAPPERS = ['optional', 'default', 'nullable', 'prefault', 'readonly', 'catch', 'nonoptional'];

/**
 * Strips optional/default/nullable/pipe wrappers. A `z.preprocess` pipe (from a transform) is
 * entered at its input (env overrides treat the value as one leaf) or, with `toOutput`, at the
 * schema that validates the result (where its known keys are).
 */
function unwrap(s: z.ZodType, toOutput = false): z.ZodType {
  for (;;) {
    const d = defOf(s);
    if (d.innerType && WRAPPERS.includes(d.type)) s = d.innerType;
    else if (toOutput && d.type === 'pipe' && d.in && d.out && defOf(d.in).type === 'transform') s = d.out;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
}

/** The schema at `path` inside `schema` (objects and arrays), or undefined; `toOutput` as in unwrap. */
export function schemaAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>, toOutput = false): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const key of path) {
    if (!s) return undefined;
    const d = defOf(unwrap(s, toOutput));
    if (d.type === 'object' && typeof key === 'string') s = d.shape?.[key];
    else if (d.type === 'array' && typeof key === 'number') s = d.element;
    else return undefined;
  }
  return s;
}

/** The first `.describe()` text on a schema or any wrapper inside it (defaults hide the inner one). */
function descriptionOf(s: z.ZodType | undefined): string | undefined {
  while (s) {
    if (s.description) return s.description;
    const d = defOf(s);
    s = d.innerType ?? (d.type === 'pipe' ? d.in : undefined);
  }
  return undefined;
}

/** Every leaf key path of an object schema (objects are descended, everything else is a leaf). */
export function leafPaths(schema: z.ZodType, prefix: string[] = []): string[][] {
  const d = defOf(unwrap(schema));
  if (d.type !== 'object' || !d.shape) return [prefix];
  return Object.entries(d.shape).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
}

/** The app an override is meant for: `FEDLORA_<SCOPE>_...` is read only by that app. */
export type EnvScope = 'COORDINATOR' | 'CLIENT';

/** `rounds.minClients` -> `FEDLORA_ROUNDS_MIN_CLIENTS`. */
export function envName(path: string[]): string {
  return ENV_PREFIX + path.map((k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** `rounds.minClients` with scope `CLIENT` -> `FEDLORA_CLIENT_ROUNDS_MIN_CLIENTS`. */
export function scopedEnvName(path: string[], scope: EnvScope): string {
  return `${ENV_PREFIX}${scope}_${envName(path).slice(ENV_PREFIX.length)}`;
}

/**
 * Applies `FEDLORA_*` overrides to a parsed document (a copy is returned). With a scope, the
 * scoped name of a key wins over its unscoped name. `applied` lists the variables used.
 */
export function applyEnvOverrides(
  doc: unknown,
  schema: z.ZodType,
  env: Record<string, string | undefined>,
  scope?: EnvScope,
): { doc: unknown; applied: string[]; sources: Map<string, string> } {
  const out = (typeof doc === 'object' && doc !== null ? structuredClone(doc) : {}) as Record<string, unknown>;
  const applied: string[] = [];
  /** key path (dot-joined) -> the variable that set it */
  const sources = new Map<string, string>();
  for (const path of leafPaths(schema)) {
    const scoped = scope ? scopedEnvName(path, scope) : undefined;
    const name = scoped !== undefined && env[scoped] !== undefined ? scoped : envName(path);
    const raw = env[name];
    if (raw === undefined) continue;
    const leaf = schemaAt(schema, path)!;
    const value = defOf(unwrap(leaf)).type === 'string' ? raw : parseScalar(raw);
    let node = out;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
    applied.push(name);
    sources.set(path.join('.'), name);
  }
  return { doc: out, applied, sources };
}

/** Environment variables fedlora reads that are not config keys. */
export const RUNTIME_ENV = ['FEDLORA_BACKEND', 'FEDLORA_MODEL_DIR', 'FEDLORA_NUM_THREADS', 'FEDLORA_NATIVE', 'FEDLORA_BENCH_ROUNDS', 'FEDLORA_DEBUG', 'FEDLORA_UID', 'FEDLORA_GID'];

/**
 * `FEDLORA_*` variables in `env` that are neither in `known` nor in RUNTIME_ENV: most likely
 * misspelt overrides, which would otherwise be ignored without a word. Each comes with the
 * closest known name when one is near (edit distance <= 3).
 */
export function unknownEnvNames(env: Record<string, string | undefined>, known: Iterable<string>): Array<{ name: string; didYouMean?: string }> {
  const all = new Set([...known, ...RUNTIME_ENV]);
  const out: Array<{ name: string; didYouMean?: string }> = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || all.has(name) || env[name] === undefined) continue;
    let best: string | undefined;
    let bestD = 4;
    for (const k of all) {
      const d = editDistance(name, k, bestD);
      if (d < bestD) [best, bestD] = [k, d];
    }
    out.push(best ? { name, didYouMean: best } : { name });
  }
  return out;
}

/** Levenshtein distance, giving up (returning `limit`) once it cannot be below `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      rowMin = Math.min(rowMin, cur[j]!);
    }
    if (rowMin >= limit) return limit;
    prev = cur;
  }
  return Math.min(prev[b.length]!, limit);
}

/** The `FEDLORA_*` variables in `env` that `applyEnvOverrides` would use (for a start-up log line; names only, never values). */
export function appliedEnvOverrides(schema: z.ZodType, env: Record<string, string | undefined>, scope?: EnvScope): string[] {
  return applyEnvOverrides({}, schema, env, scope).applied;
}

function parseScalar(raw: string): unknown {
  try {
    return parseYaml(raw) as unknown;
  } catch {
    return raw;
  }
}

/** One line per zod issue: `key.path: expected ..., received ...`. */
export function formatIssues(schema: z.ZodType, issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    const input = (issue as { input?: unknown }).input;
    const received = input === undefined ? 'nothing' : JSON.stringify(input)?.slice(0, 120);
    if (issue.code === 'unrecognized_keys') {
      const at = schemaAt(schema, issue.path, true);
      const known = Object.keys(defOf(unwrap(at ?? schema, true)).shape ?? {});
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; expected one of ${known.join(', ')}`;
    }
    const described = descriptionOf(schemaAt(schema, issue.path));
    let expected: string;
    if (issue.code === 'custom' && issue.message !== 'Invalid input') return `${where}: ${issue.message}`;
    if (described) expected = described;
    else if (issue.code === 'invalid_value') expected = `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    else if (issue.code === 'invalid_type') expected = issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`;
    else expected = issue.message;
    return `${where}: expected ${expected}, received ${received}`;
  });
}

/** Keys whose values are file system paths; resolved against the config file's directory. */
export type PathKeys = ReadonlyArray<ReadonlyArray<string>>;

/**
 * Reads `path`, applies env overrides, validates with `schema`, and resolves relative paths at
 * `pathKeys`. Throws ConfigError naming the file and every problem.
 */
export function loadConfigFile<S extends z.ZodType>(path: string, schema: S, env: Record<string, string | undefined>, pathKeys: PathKeys, scope?: EnvScope): z.infer<S> {
  const file = basename(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) as unknown;
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    throw new ConfigError(`${file}: not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${file}: expected a mapping of keys at the top level, received ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  return validateConfig(file, doc, schema, env, pathKeys, dirname(resolve(path)), scope);
}

/** Validates an already-parsed document (used by loadConfigFile and by tests / provisioning). */
export function validateConfig<S extends z.ZodType>(
  label: string,
  doc: unknown,
  schema: S,
  env: Record<string, string | undefined>,
  pathKeys: PathKeys,
  baseDir: string,
  scope?: EnvScope,
): z.infer<S> {
  const { doc: merged, sources } = applyEnvOverrides(doc, schema, env, scope);
  const result = schema.safeParse(merged, { reportInput: true });
  if (!result.success) {
    // A value that came from the environment is blamed on its variable, not on the file.
    const problems = formatIssues(schema, result.error.issues).map((p, i) => {
      const variable = sources.get(result.error.issues[i]!.path.map(String).join('.'));
      return variable ? `${variable} (overrides ${label}): ${p}` : `${label}: ${p}`;
    });
    throw new ConfigError(problems.join('\n'), problems);
  }
  const config = result.data as Record<string, unknown>;
  for (const keyPath of pathKeys) {
    let node: Record<string, unknown> | undefined = config;
    for (const k of keyPath.slice(0, -1)) node = (node?.[k] as Record<string, unknown> | undefined) ?? undefined;
    const last = keyPath.at(-1)!;
    if (node && typeof node[last] === 'string' && !isAbsolute(node[last] as string)) node[last] = resolve(baseDir, node[last] as string);
  }
  return config as z.infer<S>;
}
