/**
 * The client node's configuration: schema (zod), defaults, and `loadClientConfig`.
 * `fedlora provision` writes one per institution that validates as is; every key can be
 * overridden from the environment as `FEDLORA_<SECTION>_<KEY>` (see libs/config), e.g.
 * FEDLORA_DATA_PATH=/data/notes.jsonl. Relative paths are resolved against the config file's directory.
 */
import { z } from 'zod';
import {
  ConfigError,
  NameSchema,
  hostPortSchema,
  int,
  loadConfigFile,
  nonNegative,
  path,
  positive,
  unitHalfOpen,
  unitOpen,
  validateConfig,
  type PathKeys,
} from '@fedlora/config';

/** `host:port` of the coordinator, with an IPv6 host in brackets. */
const HostPortSchema = hostPortSchema({ allowZero: false, description: 'host:port of the coordinator (e.g. coord.example.org:7443)' });

const TlsSchema = z.strictObject({
  /** The federation CA that signed the coordinator's certificate. */
  ca: path(),
  /** This institution's client certificate and key (mTLS). */
  cert: path().optional(),
  key: path().optional(),
  /** Expected name in the coordinator's certificate when it differs from the host dialled. */
  serverName: z.string().min(1).optional().describe('a host name'),
});

const DataSchema = z.strictObject({
  /** A UTF-8 text file (one document per blank-line-separated block) or JSONL. */
  path: path(),
  /**
   * `text`, `jsonl` (a text field per line) or an instruction format, one JSON object a line:
   * `prompt-completion` ({prompt, completion}), `messages` ({messages: [{role, content}]}, rendered
   * with the model's chat_template) or `alpaca` ({instruction, input, output}); instruction data
   * trains on the completion (assistant) tokens only.
   */
  format: z.enum(['auto', 'text', 'jsonl', 'prompt-completion', 'messages', 'alpaca']).default('auto'),
  /** For JSONL: the field holding the text. */
  jsonField: z.string().min(1).optional().describe('a JSON field name'),
  evalFraction: unitHalfOpen().default(0.1),
  /**
   * Federated evaluation: a JSONL of multiple-choice questions ({question, choices, answer}) on
   * which every global adapter is scored before training; only count and accuracy leave.
   */
  evalMcq: path().optional(),
  /** A general text (e.g. held-out book chapters) whose loss per round shows forgetting; only the loss leaves. */
  generalText: path().optional(),
  /**
   * What DP-SGD protects (the privacy unit; see the README): `document` (one line of a text file,
   * one JSONL record), `field` (all records with the same `privacyUnitField` value, e.g. one
   * patient), or `sequence` (one packed training sequence; weaker, only when asked for).
   */
  privacyUnit: z.enum(['document', 'field', 'sequence']).default('document'),
  /** With privacyUnit `field`: the JSONL field whose value names a unit (e.g. `patient_id`). */
  privacyUnitField: z.string().min(1).optional().describe('a JSON field name'),
});

/**
 * What this institution demands of every round plan (see ClientPrivacyPolicy in @fedlora/federation):
 * a plan that falls short is refused and the client stops, naming what was wrong.
 */
const PolicySchema = z.strictObject({
  /**
   * `distributed` (default): noise is added here, before the update leaves, so this institution
   * need not trust the coordinator. `central`: the coordinator adds the noise (it is trusted with
   * the clipped update, or with the un-noised sum under secure aggregation).
   */
  minMode: z.enum(['central', 'distributed']).default('distributed'),
  /** Refuse plans with a noise multiplier below this. */
  minNoiseMultiplier: positive().optional(),
  /** Refuse plans with a clip norm above this. */
  maxClipNorm: positive().optional(),
  /** Plans claiming client sampling (q < 1) are accounted at q = 1 (`account-as-one`) or refused. */
  unverifiedSampling: z.enum(['account-as-one', 'refuse']).default('account-as-one'),
});

/** The privacy budget this institution will not exceed, whatever the coordinator plans, and its policy for plans. */
const BudgetSchema = z.strictObject({
  epsilon: positive(),
  delta: unitOpen(),
  policy: PolicySchema.prefault({}),
});

/**
 * Record-level DP-SGD on the client (Abadi et al. 2016). With `epsilon` the institution enforces
 * a budget per privacy unit (data.privacyUnit: a document by default, or all records of one
 * data.privacyUnitField value) in its own ledger
 * (dataDir/record-ledger.jsonl): a round whose DP-SGD would exceed it is refused and training stops.
 */
const DpSgdSchema = z.strictObject({
  /** Per-unit L2 clip C; default DEFAULT_DP_SGD_CLIP_NORM (0.1). */
  clipNorm: positive().optional(),
  /** Noise std / C; absent: calibrated from `epsilon` over the planned rounds (budget first). */
  noiseMultiplier: nonNegative().optional(),
  /** Budget epsilon per privacy unit (at `delta`). */
  epsilon: positive().optional(),
  /** delta per privacy unit; default privacy.delta, else 1e-5. Refused above 1 / (number of units). */
  delta: unitOpen().optional(),
  /** Rounds the budget is spread over when the noise is calibrated; default: what the coordinator announces. */
  rounds: int(1).optional(),
  /** At most this many sequences of a unit per step (default 8). */
  maxSequencesPerUnit: int(1).optional(),
  /**
   * How each record's gradient is obtained for clipping: `ghost` (the default when absent) from one
   * batched pass (ghost clipping, Li et al. 2022), or `per-example`, one pass per record (the
   * reference, slower). Both clip and noise alike; the privacy cost is the same.
   */
  perExampleGradients: z.enum(['ghost', 'per-example']).optional(),
  /**
   * A retry of the same round (same global adapter and plan) re-sends the update already trained
   * and accounted for the attempt that aborted, spending nothing more (default true); false trains
   * and spends afresh for every attempt (released-update.ts, SECURITY.md: the trade-off).
   */
  reuseOnRetry: z.boolean().optional(),
});

/** delta of the DP-SGD budget when neither dpSgd.delta nor privacy.delta is given. */
export const DEFAULT_DP_SGD_DELTA = 1e-5;

/** Local overrides of the coordinator's plan (only ever more conservative ones are honoured by the app). */
const TrainingSchema = z.strictObject({
  localSteps: int(1).optional(),
  batchSize: int(1).optional(),
  learningRate: positive().optional(),
  seqLen: int(8, 8192).optional(),
  proximalMu: nonNegative().optional(),
  backend: z.enum(['auto', 'wasm', 'cpu', 'native']).default('auto'),
});

const ReconnectSchema = z
  .strictObject({
    initialBackoffMs: int(1).default(500),
    maxBackoffMs: int(1).default(30_000),
    /**
     * Give up (exit non-zero) after about this long without reaching the coordinator, so a
     * supervisor (systemd, Kubernetes) sees the failure; 0 retries forever.
     */
    giveUpAfterSeconds: nonNegative().default(3600),
  })
  .refine((r) => r.maxBackoffMs >= r.initialBackoffMs, { message: 'expected maxBackoffMs >= initialBackoffMs', path: ['maxBackoffMs'] });

/**
 * The federation's member list (issue 16, finding 1): members.json, signed by the federation
 * authority whose public key this institution pins here. Secure-aggregation rounds whose roster
 * names anyone else, or another key for a member, are declined; without it every secure round is.
 */
const MembershipSchema = z.strictObject({
  /** The signed member list (fedlora provision writes members.json). */
  file: path(),
  /** The federation authority's Ed25519 public key (base64), obtained out of band; never the coordinator's. */
  authorityKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a 32-byte Ed25519 public key in base64').describe('base64 of a 32-byte Ed25519 public key'),
});

/** This institution's own floors on secure-aggregation plans (defaults: DEFAULT_SECURE_MINIMUMS of @fedlora/federation). */
const SecAggMinimumsSchema = z.strictObject({
  /** Smallest cohort it joins. */
  minCohort: int(2).default(3),
  /** Fewest clients its update may be summed with, itself included; it reveals no share below this. */
  minSurvivors: int(2).default(2),
  /** Fraction of the cohort it assumes may collude with the coordinator when checking (k, t). */
  corruptFraction: z.number().min(0).lt(0.5).default(0).describe('a number in [0, 0.5)'),
  /** sigma of the (k, t) check: colluders succeed with probability <= 2^-sigma. */
  securityBits: int(1, 128).default(40),
});

/** The client config file, validated. */
export const ClientConfigSchema = z
  .strictObject({
    name: NameSchema,
    /** When set, the client refuses a coordinator that serves another federation. */
    federationId: NameSchema.optional(),
    coordinator: HostPortSchema,
    tls: TlsSchema.optional(),
    /** Plaintext gRPC: local development only (logged as a loud warning). */
    insecure: z.boolean().default(false).describe('true or false'),
    identity: z.strictObject({ secretKeyFile: path() }),
    /** Holds this client's own privacy ledger and cached adapters. */
    dataDir: path(),
    data: DataSchema,
    privacy: BudgetSchema.optional(),
    membership: MembershipSchema.optional(),
    secagg: SecAggMinimumsSchema.prefault({}),
    dpSgd: DpSgdSchema.optional(),
    /** The base model (Hugging Face layout); must be the coordinator's. Default: the bundled tiny model. */
    model: z.strictObject({ baseModelDir: path().optional() }).prefault({}),
    training: TrainingSchema.prefault({}),
    reconnect: ReconnectSchema.prefault({}),
    log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') }).prefault({}),
  })
  .superRefine((c, ctx) => {
    if (!c.tls && !c.insecure) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'expected {ca, cert, key} (or insecure: true for local development), received nothing' });
    if (c.tls && c.insecure) ctx.addIssue({ code: 'custom', path: ['insecure'], message: 'expected false when tls is configured, received true' });
    if (c.tls && (c.tls.cert === undefined) !== (c.tls.key === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['tls', c.tls.cert === undefined ? 'cert' : 'key'], message: 'expected both cert and key (mTLS) or neither, received only one' });
    }
    if (c.data.privacyUnit === 'field' && !c.data.privacyUnitField) {
      ctx.addIssue({ code: 'custom', path: ['data', 'privacyUnitField'], message: 'expected the JSONL field naming a unit (e.g. patient_id) with privacyUnit "field", received nothing' });
    }
    if (c.data.privacyUnit !== 'field' && c.data.privacyUnitField) {
      ctx.addIssue({ code: 'custom', path: ['data', 'privacyUnit'], message: `expected "field" with privacyUnitField, received ${JSON.stringify(c.data.privacyUnit)}` });
    }
    if (c.data.privacyUnit === 'field' && c.data.format === 'text') {
      ctx.addIssue({ code: 'custom', path: ['data', 'format'], message: 'expected jsonl with privacyUnit "field" (a text line has no fields), received "text"' });
    }
    if (c.data.privacyUnit === 'field' && ['prompt-completion', 'messages', 'alpaca'].includes(c.data.format)) {
      ctx.addIssue({ code: 'custom', path: ['data', 'privacyUnit'], message: `expected "document" with instruction data (each example is one unit), received "field"` });
    }
    if (c.data.format === 'jsonl' && !c.data.jsonField) ctx.addIssue({ code: 'custom', path: ['data', 'jsonField'], message: 'expected a field name when data.format is "jsonl", received nothing' });
    if (c.dpSgd && c.dpSgd.epsilon === undefined && c.dpSgd.noiseMultiplier === undefined) {
      ctx.addIssue({ code: 'custom', path: ['dpSgd', 'epsilon'], message: 'expected the budget epsilon (the noise is calibrated from it) or a noiseMultiplier, received neither' });
    }
    if (c.dpSgd?.epsilon === undefined && c.dpSgd?.delta !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['dpSgd', 'epsilon'], message: 'expected the record-level budget epsilon (> 0) with dpSgd.delta, received nothing' });
    }
  });

/** A validated client config (defaults filled in, paths absolute). */
export type ClientConfig = z.infer<typeof ClientConfigSchema>;

/** Keys holding paths, resolved against the config file's directory. */
export const CLIENT_PATH_KEYS: PathKeys = [['model', 'baseModelDir'], ['tls', 'ca'], ['tls', 'cert'], ['tls', 'key'], ['identity', 'secretKeyFile'], ['dataDir'], ['data', 'path'], ['data', 'evalMcq'], ['data', 'generalText'], ['membership', 'file']];

/** Reads, env-overrides and validates a client config file; throws ConfigError listing every problem. */
export function loadClientConfig(path: string, env: Record<string, string | undefined> = process.env): ClientConfig {
  return loadConfigFile(path, ClientConfigSchema, env, CLIENT_PATH_KEYS, 'CLIENT');
}

/** Validates an in-memory document as if it were a file in `baseDir` (for provisioning and tests). */
export function parseClientConfig(doc: unknown, options: { label?: string; baseDir?: string; env?: Record<string, string | undefined> } = {}): ClientConfig {
  return validateConfig(options.label ?? 'client config', doc, ClientConfigSchema, options.env ?? {}, CLIENT_PATH_KEYS, options.baseDir ?? process.cwd(), 'CLIENT');
}

export { ConfigError };

/**
 * How many consecutive failed attempts `runClient` may make so that its backoff waits (doubling
 * from `initialMs`, capped at `maxMs`) add up to at least `giveUpMs`; 0 means retry forever.
 */
export function reconnectRetries(giveUpMs: number, initialMs: number, maxMs: number): number {
  if (!(giveUpMs > 0)) return Number.POSITIVE_INFINITY;
  let waited = 0;
  let n = 0;
  while (waited < giveUpMs) {
    waited += Math.min(maxMs, initialMs * 2 ** n);
    n++;
  }
  return n;
}
