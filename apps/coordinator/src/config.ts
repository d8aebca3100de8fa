/**
 * The coordinator's configuration: schema (zod), defaults, and `loadCoordinatorConfig`.
 * `fedlora provision` writes a file that validates as is; every key can be overridden from the
 * environment as `FEDLORA_<SECTION>_<KEY>` (see libs/config), e.g. FEDLORA_ROUNDS_TOTAL=10.
 * Relative paths (tls.*, dataDir, identity.secretKeyFile, model.baseModelDir) are resolved
 * against the directory of the config file.
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

/** `host:port`, with an IPv6 host in brackets; port 0 lets the system pick. */
export const HostPortSchema = hostPortSchema({ allowZero: true, description: 'host:port (e.g. 127.0.0.1:7443 or [::1]:7443)' });

/** A name usable as an identifier, file name and certificate CN. */
export { NameSchema };

/** An Ed25519 public key in base64 (32 bytes). */
export const PublicKeySchema = z
  .string()
  .refine((s) => {
    const b = Buffer.from(s, 'base64');
    return b.length === 32 && b.toString('base64') === s;
  })
  .describe('an Ed25519 public key (32 bytes, base64)');

const TlsSchema = z.strictObject({
  ca: path(),
  cert: path(),
  key: path(),
  requireClientCert: z.boolean().default(true).describe('true or false'),
});

const LoraSchema = z.strictObject({
  r: int(1, 1024).default(8),
  alpha: positive().default(16),
  dropout: unitHalfOpen().default(0),
  targetModules: z.array(z.string().min(1)).min(1).optional().describe('a non-empty list of module names'),
  /** `ffa`: FFA-LoRA (A frozen at the shared seeded initialisation, only B trained and sent); `lora`: both. */
  variant: z.enum(['lora', 'ffa']).default('lora'),
});

const ModelSchema = z.strictObject({
  /** Hugging Face layout directory of the base model; default: the bundled tiny model. */
  baseModelDir: path().optional(),
  lora: LoraSchema.prefault({}),
  /** Seed of the initial LoRA matrices (all clients start from the same adapter). */
  seed: z.union([z.string(), z.int()]).optional().describe('a string or integer seed'),
});

const RoundsSchema = z
  .strictObject({
    total: int(1, 1_000_000),
    minClients: int(1).default(2),
    /** An integer >= 1 is a count; a number in (0, 1] is a fraction of the available clients. */
    clientsPerRound: z
      .union([z.int().min(1), z.number().gt(0).max(1)])
      .optional()
      .describe('a count (integer >= 1) or a fraction in (0, 1]'),
    /** How clientsPerRound is drawn: a fixed-size uniform subset, or each institution independently (Poisson). */
    sampling: z.enum(['uniform', 'poisson']).default('uniform'),
    deadlineSeconds: positive().default(600),
    waitAfterMinimumSeconds: nonNegative().default(0),
    /**
     * After a restart, the first round waits up to this long for every client of the last committed
     * round to register again (a client's reconnect backoff may outlast the restart); 0 does not wait.
     */
    rejoinGraceSeconds: nonNegative().default(60),
    heartbeatSeconds: positive().default(15),
    localSteps: int(1).default(10),
    batchSize: int(1).default(4),
    learningRate: positive().default(1e-3),
    seqLen: int(8, 8192).default(64),
    /** Seed of cohort sampling (recorded for the accountant). */
    seed: z.union([z.string(), z.int()]).optional().describe('a string or integer seed'),
  })
  .refine((r) => r.clientsPerRound === undefined || r.clientsPerRound <= 1 || r.clientsPerRound >= r.minClients, {
    message: 'expected a count >= minClients (or a fraction), received a count below minClients',
    path: ['clientsPerRound'],
  });

const StrategySchema = z.strictObject({
  name: z.enum(['fedavg', 'fedadam', 'fedyogi', 'fedadagrad', 'fedprox']).default('fedavg'),
  serverLearningRate: positive().optional(),
  beta1: unitHalfOpen().optional(),
  beta2: unitHalfOpen().optional(),
  tau: positive().optional(),
  /** FedProx proximal coefficient μ (client side). */
  proximalMu: nonNegative().optional(),
});

/**
 * Quantile-based adaptive clipping (Andrew et al. 2021) of DP-FedAvg; defaults are the
 * paper's. `noiseMultiplier` stays the round's overall z: the update sum gets z_Delta > z so that
 * sum and count together cost what a fixed-clip round with z costs (Theorem 1).
 */
const AdaptiveClippingSchema = z
  .strictObject({
    /** gamma: the fraction of updates to leave unclipped (0.5: clip at the median norm). */
    targetQuantile: unitOpen().default(0.5),
    /** eta_C of the geometric update C <- C exp(-eta_C (b - gamma)). */
    learningRate: positive().default(0.2),
    /** sigma_b, std of the noise on the count of unclipped updates; default max(m/20, noiseMultiplier) for m clients per round. */
    bitNoiseStd: positive().optional(),
    /** C of the first round; default privacy.clipNorm. */
    initialClip: positive().optional(),
  })
  .describe('{targetQuantile, learningRate, bitNoiseStd?, initialClip?}');

const PrivacySchema = z
  .strictObject({
    mode: z.enum(['none', 'central', 'distributed']).default('none'),
    clipNorm: positive().optional(),
    noiseMultiplier: nonNegative().optional(),
    delta: unitOpen().optional(),
    /** Adaptive clipping: an object turns it on; false or absent keeps the fixed clipNorm. */
    adaptiveClipping: z
      .preprocess((v) => (v === false ? undefined : v), AdaptiveClippingSchema.optional())
      .describe('false or an object {targetQuantile, learningRate, bitNoiseStd?, initialClip?}'),
    /** Stop the run before the federation's epsilon would exceed this. */
    targetEpsilon: positive().optional(),
    /**
     * Budget first (central mode): the federation's epsilon at `delta` over `rounds.total`; the
     * coordinator calibrates the noise multiplier for it (recorded in the plans and the ledger).
     */
    epsilon: positive().optional(),
  })
  .refine((p) => p.mode === 'none' || (p.clipNorm !== undefined && (p.noiseMultiplier !== undefined || p.epsilon !== undefined) && p.delta !== undefined), {
    message: 'expected clipNorm, delta and either noiseMultiplier or epsilon (the budget) to be set for a "central" or "distributed" mode, received a mode without them',
    path: ['mode'],
  })
  .refine((p) => p.epsilon === undefined || p.noiseMultiplier === undefined, {
    message: 'epsilon calibrates the noise multiplier: give epsilon or noiseMultiplier, not both',
    path: ['epsilon'],
  })
  .refine((p) => p.epsilon === undefined || (p.mode === 'central' && !p.adaptiveClipping), {
    message: 'epsilon (budget first) calibrates central noise with a fixed clipNorm: for distributed noise or adaptive clipping give noiseMultiplier (size it with `fedlora privacy noise`)',
    path: ['epsilon'],
  });

const SecAggSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('true or false'),
  /** Shamir threshold t; default chosen from the cohort size. */
  threshold: int(2).optional(),
  /** Neighbours per client in the SecAgg+ graph; default: complete graph for small cohorts. */
  neighbours: int(2).optional(),
});

/** Who may read the dashboard: a role for a bearer token (stored as its SHA-256) or a client certificate's CN. */
const DashboardRoleSchema = z.enum(['operator', 'auditor']).describe('"operator" or "auditor"');
const DashboardAuthSchema = z.strictObject({
  /** Bearer tokens by their SHA-256 in hex (`printf %s "$TOKEN" | sha256sum`): the config never holds the token itself. */
  tokens: z
    .array(z.strictObject({ role: DashboardRoleSchema, sha256: z.string().regex(/^[0-9a-fA-F]{64}$/).describe('64 hex digits (SHA-256 of the token)') }))
    .default([]),
  /** Mutual TLS (with dashboard.tls): a client certificate the federation CA signed, by its common name. */
  certificates: z.array(z.strictObject({ commonName: NameSchema, role: DashboardRoleSchema })).default([]),
});

/** The read-only web dashboard (apps/coordinator/src/dashboard): opt-in, loopback unless authenticated over TLS. */
const DashboardSchema = z.strictObject({
  listen: HostPortSchema.default('127.0.0.1:8080'),
  /** Serve HTTPS with tls.cert/tls.key and ask for client certificates of tls.ca. */
  tls: z.boolean().default(false).describe('true or false'),
  auth: DashboardAuthSchema.prefault({}),
});

const EnrolledClientSchema = z.strictObject({
  name: NameSchema,
  publicKey: PublicKeySchema,
});

/** The coordinator config file, validated. */
export const CoordinatorConfigSchema = z
  .strictObject({
    federationId: NameSchema,
    listen: HostPortSchema.default('127.0.0.1:7443'),
    tls: TlsSchema.optional(),
    /** Plaintext gRPC: local development only (logged as a loud warning). */
    insecure: z.boolean().default(false).describe('true or false'),
    dataDir: path(),
    metrics: z.strictObject({ listen: HostPortSchema }).optional(),
    dashboard: DashboardSchema.optional(),
    model: ModelSchema.prefault({}),
    rounds: RoundsSchema,
    strategy: StrategySchema.prefault({}),
    privacy: PrivacySchema.prefault({}),
    secagg: SecAggSchema.prefault({}),
    /**
     * Memory for updates being uploaded, in MiB (2^20 bytes; all clients together, verified partial uploads kept for
     * resume; one upload per client and round). An upload stream silent for idleSeconds, or open for maxStreamSeconds,
     * is ended and its memory freed (the client resumes).
     */
    uploads: z
      .strictObject({ maxBufferedMB: int(1, 1 << 20).default(512), idleSeconds: positive().default(60), maxStreamSeconds: positive().default(900) })
      .prefault({}),
    clients: z.array(EnrolledClientSchema).default([]),
    identity: z.strictObject({ secretKeyFile: path() }),
    log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') }).prefault({}),
  })
  .superRefine((c, ctx) => {
    if (!c.tls && !c.insecure) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'expected {ca, cert, key} (or insecure: true for local development), received nothing' });
    if (c.tls && c.insecure) ctx.addIssue({ code: 'custom', path: ['insecure'], message: 'expected false when tls is configured, received true' });
    if (c.tls && !c.tls.requireClientCert && c.clients.length > 0) {
      // Without client certificates the coordinator cannot bind a request to the certificate the federation CA issued
      // to that institution: a stolen signing key alone would do (#16 finding 10). Refused rather than silently weaker.
      ctx.addIssue({
        code: 'custom',
        path: ['tls', 'requireClientCert'],
        message: `expected true when clients are enrolled (each institution's requests are bound to the client certificate issued to its name), received false with ${c.clients.length} enrolled client(s); remove the key or set it to true`,
      });
    }
    const adaptive = c.privacy.adaptiveClipping;
    if (adaptive) {
      if (c.privacy.mode === 'none') {
        ctx.addIssue({ code: 'custom', path: ['privacy', 'adaptiveClipping'], message: 'expected privacy.mode "central" or "distributed" with adaptive clipping, received mode "none"' });
      }
      if (c.privacy.mode === 'central' && c.secagg.enabled) {
        ctx.addIssue({
          code: 'custom',
          path: ['privacy', 'adaptiveClipping'],
          message: 'expected secagg.enabled false with central noise and adaptive clipping (secure aggregation hides the bits the coordinator would add noise to; use privacy.mode "distributed"), received secagg.enabled true',
        });
      }
      const z = c.privacy.noiseMultiplier;
      if (adaptive.bitNoiseStd !== undefined && z !== undefined && !(adaptive.bitNoiseStd > z / 2)) {
        ctx.addIssue({
          code: 'custom',
          path: ['privacy', 'adaptiveClipping', 'bitNoiseStd'],
          message: `expected more than privacy.noiseMultiplier / 2 = ${z / 2} (Andrew et al. 2021, Theorem 1), received ${adaptive.bitNoiseStd}`,
        });
      }
    }
    if (c.privacy.mode === 'distributed' && !c.secagg.enabled) {
      ctx.addIssue({ code: 'custom', path: ['secagg', 'enabled'], message: 'expected true when privacy.mode is "distributed" (noise is split across clients), received false' });
    }
    if (c.secagg.enabled && c.rounds.minClients < 3) {
      // Otherwise a round opens with 2 clients, SecAgg+ setup refuses it and the run fails (chooseSecAggParams needs n >= 3).
      ctx.addIssue({ code: 'custom', path: ['rounds', 'minClients'], message: `expected at least 3 when secagg.enabled (SecAgg+ needs a cohort of 3 or more), received ${c.rounds.minClients}` });
    }
    if (c.dashboard) dashboardIssues(c.dashboard, !!c.tls).forEach((i) => ctx.addIssue({ code: 'custom', ...i }));
    const seen = new Set<string>();
    c.clients.forEach((cl, i) => {
      if (seen.has(cl.name)) ctx.addIssue({ code: 'custom', path: ['clients', i, 'name'], message: `expected a unique name, received duplicate ${JSON.stringify(cl.name)}` });
      seen.add(cl.name);
    });
    if (c.clients.length > 0 && c.clients.length < c.rounds.minClients) {
      ctx.addIssue({ code: 'custom', path: ['rounds', 'minClients'], message: `expected at most the ${c.clients.length} enrolled clients, received ${c.rounds.minClients}` });
    }
  });

/** True for 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Beyond loopback the dashboard needs TLS and a way to authenticate (tokens or client certificates). */
function dashboardIssues(d: z.infer<typeof DashboardSchema>, haveTls: boolean): Array<{ path: PropertyKey[]; message: string }> {
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  const host = d.listen.slice(0, d.listen.lastIndexOf(':'));
  const authed = d.auth.tokens.length > 0 || d.auth.certificates.length > 0;
  if (d.tls && !haveTls) out.push({ path: ['dashboard', 'tls'], message: 'expected the coordinator\'s tls {ca, cert, key} to serve the dashboard over HTTPS, received dashboard.tls true without them' });
  if (d.auth.certificates.length > 0 && !d.tls) out.push({ path: ['dashboard', 'auth', 'certificates'], message: 'expected dashboard.tls true (client certificates need HTTPS), received certificates without it' });
  if (!isLoopbackHost(host) && (!d.tls || !authed)) {
    out.push({
      path: ['dashboard', 'listen'],
      message: `expected a loopback address (127.0.0.1, ::1) unless dashboard.tls is true and dashboard.auth lists tokens or certificates, received ${d.listen} with${d.tls ? '' : 'out'} TLS and ${authed ? 'some' : 'no'} auth`,
    });
  }
  return out;
}

/** A validated coordinator config (defaults filled in, paths absolute). */
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;

/** Keys holding paths, resolved against the config file's directory. */
export const COORDINATOR_PATH_KEYS: PathKeys = [['tls', 'ca'], ['tls', 'cert'], ['tls', 'key'], ['dataDir'], ['identity', 'secretKeyFile'], ['model', 'baseModelDir']];

/** Reads, env-overrides and validates a coordinator config file; throws ConfigError listing every problem. */
export function loadCoordinatorConfig(path: string, env: Record<string, string | undefined> = process.env): CoordinatorConfig {
  return loadConfigFile(path, CoordinatorConfigSchema, env, COORDINATOR_PATH_KEYS, 'COORDINATOR');
}

/** Validates an in-memory document as if it were a file in `baseDir` (for provisioning and tests). */
export function parseCoordinatorConfig(doc: unknown, options: { label?: string; baseDir?: string; env?: Record<string, string | undefined> } = {}): CoordinatorConfig {
  return validateConfig(options.label ?? 'coordinator config', doc, CoordinatorConfigSchema, options.env ?? {}, COORDINATOR_PATH_KEYS, options.baseDir ?? process.cwd(), 'COORDINATOR');
}

export { ConfigError };
