import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CausalLM, LoraConfig, TextSegment } from '@fedlora/model';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, loadModel, validateLoraConfig } from '@fedlora/model';
import type { EventLogger, LocalTrainer, RoundPlan, TrainingProgress } from '@fedlora/federation';
import { loadMemberList, noiseShareFor } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { cryptoRandomBytes } from '@fedlora/tensor';
import { instructTrainingSequences, isInstructFormat, packUnits, readInstructExamples, readJsonl, parseMcqItem, readTextDocuments, readUnitRecords, splitHeldOut, splitRecordsByUnit, tokenizeToSequences, type PerExampleMethod, type PrivacyUnitSpec, type UnitRecord } from '@fedlora/train';
import { createRequestSigner, insecureChannelCredentials, loadChannelCredentials, loadIdentity, wipeIdentity } from '@fedlora/transport-grpc';
import { ClientConfigSchema, reconnectRetries, type ClientConfig } from './config.js';
import { appliedEnvOverrides } from '@fedlora/config';
import { ModelTrainer } from './model-trainer.js';
import { DpSgdTrainer, dpSgdTrainerSettings, type DpSgdTrainerOptions } from './dp-sgd-trainer.js';
import type { ClientPrivacyGuard } from '@fedlora/privacy';
import { DEFAULT_DP_SGD_DELTA } from './config.js';
import type { FederatedEvalSets } from './federated-eval.js';
import { buildClient } from './build-client.js';

/** Settings of a PlanFollowingTrainer. */
export interface PlanFollowingTrainerSettings {
  evalFraction: number;
  defaultSeqLen: number;
  seed: string;
  log: EventLogger;
  /** Record-level DP-SGD; with `guard`, rounds that would exceed the record-level budget are refused and training stops. */
  dpSgd?: {
    clipNorm: number;
    /** Absent: calibrated from `budget` (budget first). */
    noiseMultiplier?: number;
    budget?: { epsilon: number; delta: number; rounds?: number };
    maxSequencesPerUnit?: number;
    perExampleGradients?: PerExampleMethod;
    /** Default true: a retry of the same round re-sends the update already accounted (released-update.ts). */
    reuseOnRetry?: boolean;
    guard?: ClientPrivacyGuard;
    unit?: PrivacyUnitSpec;
  };
  /**
   * Instruction data (prompt/completion segments per example) instead of `documents`: one
   * example per sequence, loss on the completion only; for DP-SGD each example is one unit.
   */
  instruct?: TextSegment[][];
}

/**
 * A LocalTrainer that follows the coordinator's plan: the LoRA layout and sequence length come
 * from the plan (every client must train the same adapter shape); the data is tokenized once
 * per sequence length.
 */
export class PlanFollowingTrainer implements LocalTrainer {
  private readonly cache = new Map<string, ModelTrainer | DpSgdTrainer>();
  readonly numExamples: number;

  constructor(
    private readonly model: CausalLM,
    /** Documents for plain training; for DP-SGD, records by privacy unit (`readUnitRecords`). */
    private readonly documents: string[] | UnitRecord[],
    private readonly opts: PlanFollowingTrainerSettings,
  ) {
    // An estimate for registration: packed sequences at the default length.
    this.numExamples = Math.max(1, this.trainerFor(opts.defaultSeqLen, defaultLoraConfig(model)).numExamples);
  }

  /** A DP-SGD trainer from the configured settings; `extra` adds what only one data path sets. */
  private dpSgdTrainer(
    dp: NonNullable<PlanFollowingTrainerSettings['dpSgd']>,
    lora: LoraConfig,
    train: DpSgdTrainerOptions['train'],
    heldOut: DpSgdTrainerOptions['heldOut'],
    extra: Pick<DpSgdTrainerOptions, 'maxSequencesPerUnit' | 'onTrained'>,
  ): DpSgdTrainer {
    return new DpSgdTrainer({
      model: this.model,
      lora,
      train,
      heldOut,
      clipNorm: dp.clipNorm,
      ...(dp.noiseMultiplier !== undefined ? { noiseMultiplier: dp.noiseMultiplier } : {}),
      ...(dp.budget ? { budget: dp.budget } : {}),
      ...extra,
      perExampleGradients: dp.perExampleGradients,
      ...(dp.reuseOnRetry !== undefined ? { reuseOnRetry: dp.reuseOnRetry } : {}),
      // Local only: a retry served from the update this institution already paid for.
      onReused: (round, attempt) => this.opts.log.info({ event: 'dpsgd.reused', round, attempt }),
      guard: dp.guard,
      stopOnRefusal: true,
      rng: cryptoRandomBytes,
    });
  }

  private trainerFor(seqLen: number, lora: LoraConfig): ModelTrainer | DpSgdTrainer {
    const key = `${seqLen}:${JSON.stringify(lora)}`;
    let t = this.cache.get(key);
    if (!t) {
      const dp = this.opts.dpSgd;
      if (this.opts.instruct) {
        const r = instructTrainingSequences(this.model.tokenizer, this.opts.instruct, seqLen);
        if (r.sequences.length === 0) throw new RangeError(`every instruction example was skipped (${r.skipped}): no completion fits seqLen ${seqLen}; raise training.seqLen`);
        const { train, heldOut } = this.opts.evalFraction > 0 && r.sequences.length >= 2 ? splitHeldOut(r.sequences, this.opts.evalFraction) : { train: r.sequences, heldOut: [] };
        t = dp
          ? this.dpSgdTrainer(dp, lora, train, heldOut, {})
          : new ModelTrainer({ model: this.model, lora, train, heldOut, seed: this.opts.seed });
        this.opts.log.info({ event: 'data.prepared', seqLen, format: 'instruction', trainSequences: train.length, heldOutSequences: heldOut.length, truncated: r.truncated, skipped: r.skipped });
      } else if (dp) {
        // DP-SGD: whole units are held out, and packing never mixes units (privacy-units.ts).
        const unit = dp.unit ?? { unit: 'document' };
        const records = this.documents.map((d) => (typeof d === 'string' ? { text: d } : d));
        const split = this.opts.evalFraction > 0 && records.length >= 2 ? splitRecordsByUnit(records, unit, this.opts.evalFraction) : { train: records, heldOut: [] };
        const train = packUnits(this.model, split.train, seqLen, unit);
        const heldOut = split.heldOut.length ? tokenizeToSequences(this.model, split.heldOut.map((r) => r.text), seqLen) : [];
        const log = this.opts.log;
        t = this.dpSgdTrainer(dp, lora, train, heldOut, {
          ...(dp.maxSequencesPerUnit !== undefined ? { maxSequencesPerUnit: dp.maxSequencesPerUnit } : {}),
          // Local only: what the per-unit cap left out never reaches the coordinator.
          onTrained: (round, r) => log.info({ event: 'dpsgd.trained', round, ...r }),
        });
        log.info({ event: 'data.prepared', seqLen, privacyUnit: unit.field ?? unit.unit, trainUnits: train.units.length, trainSequences: train.sequences.length, heldOutSequences: heldOut.length });
      } else {
        const seqs = tokenizeToSequences(this.model, this.documents.map((d) => (typeof d === 'string' ? d : d.text)), seqLen);
        const { train, heldOut } = this.opts.evalFraction > 0 && seqs.length >= 2 ? splitHeldOut(seqs, this.opts.evalFraction) : { train: seqs, heldOut: [] };
        t = new ModelTrainer({ model: this.model, lora, train, heldOut, seed: this.opts.seed });
        this.opts.log.info({ event: 'data.prepared', seqLen, trainSequences: train.length, heldOutSequences: heldOut.length });
      }
      this.cache.set(key, t);
    }
    return t;
  }

  private forPlan(plan: RoundPlan): ModelTrainer | DpSgdTrainer {
    const seqLen = plan.training?.seqLen ?? this.opts.defaultSeqLen;
    const lora: LoraConfig = plan.training?.lora ?? defaultLoraConfig(this.model);
    validateLoraConfig(lora);
    return this.trainerFor(seqLen, lora);
  }

  /** The record-level budget check of DP-SGD (plain training always accepts). */
  async accept(plan: RoundPlan): Promise<{ accept: true } | { accept: false; reason: string; stop?: string }> {
    const t = this.forPlan(plan);
    return t instanceof DpSgdTrainer ? t.accept(plan) : { accept: true };
  }

  async train(plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress) {
    return this.forPlan(plan).train(plan, global, progress);
  }
}

/**
 * Runs an institution's node as its config file says, until the federation finishes. A fleet
 * (run-fleet.ts) passes `shared`: the base model it loaded once for all its institutions (read
 * only; it stays loaded), and no environment overrides were applied to its entries.
 */
export async function runClientFromConfig(cfg: ClientConfig, log: EventLogger, signal?: AbortSignal, shared?: { model: CausalLM }): Promise<{ roundsTrained: number[]; backend: string; stopped?: string }> {
  const backend = await initBackend({ backend: cfg.training.backend === 'auto' ? undefined : cfg.training.backend });
  const envApplied = shared ? [] : appliedEnvOverrides(ClientConfigSchema, process.env, 'CLIENT');
  if (envApplied.length > 0) log.info({ event: 'config.env', applied: envApplied });
  log.info({ event: 'backend.selected', backend: backend.name });
  const model = shared?.model ?? (await loadModel(cfg.model.baseModelDir ?? DEFAULT_BASE_MODEL_DIR));
  try {
    const format = cfg.data.format === 'text' || cfg.data.format === 'jsonl' ? cfg.data.format : undefined;
    const unit: PrivacyUnitSpec = cfg.data.privacyUnit === 'field' ? { unit: 'field', field: cfg.data.privacyUnitField! } : { unit: cfg.data.privacyUnit };
    const instruct = isInstructFormat(cfg.data.format) ? await readInstructExamples(cfg.data.path, model.tokenizer, cfg.data.format) : undefined;
    const documents = instruct
      ? []
      : cfg.dpSgd
      ? await readUnitRecords(cfg.data.path, { format, field: cfg.data.jsonField, ...(unit.field ? { unitField: unit.field } : {}) })
      : await readTextDocuments(cfg.data.path, { format, field: cfg.data.jsonField });
    const credentials = cfg.tls
      ? loadChannelCredentials({ ca: cfg.tls.ca, cert: cfg.tls.cert, key: cfg.tls.key })
      : insecureChannelCredentials((message) => log.warn({ event: 'tls.disabled', message }));
    // Every request is signed with the institution's enrolled Ed25519 identity (federation, round, method, body hash, nonce, time).
    const loaded = loadIdentity(cfg.identity.secretKeyFile);
    const identity = { ...loaded, name: loaded.name || cfg.name }; // a bare base64 key file carries no name
    if (identity.name !== cfg.name) throw new RangeError(`identity.secretKeyFile: expected the key of "${cfg.name}", received the key of "${identity.name}"`);
    // Record-level DP-SGD budget: the institution's own ledger for the record unit, signed with its identity key (wiped after the run).
    const recordBudget = cfg.dpSgd?.epsilon !== undefined ? { epsilon: cfg.dpSgd.epsilon, delta: cfg.dpSgd.delta ?? cfg.privacy?.delta ?? DEFAULT_DP_SGD_DELTA } : undefined;
    const evalSets = await federatedEvalSets(model, cfg);
    // Secure-aggregation rosters are checked against the member list the federation authority signed, never the coordinator's word.
    const members = cfg.membership ? loadMemberList(cfg.membership.file, cfg.membership.authorityKey, cfg.federationId) : new Map<string, Uint8Array>();
    if (!cfg.membership) log.warn({ event: 'membership.missing', message: 'no membership (signed member list) in the config: every secure-aggregation round will be declined' });
    else log.info({ event: 'membership.loaded', members: members.size, file: cfg.membership.file });
    const listed = members.get(cfg.name);
    if (cfg.membership && (!listed || Buffer.compare(Buffer.from(listed), Buffer.from(identity.publicKey)) !== 0)) {
      throw new RangeError(`membership.file: the member list ${listed ? 'lists' : 'does not list'} "${cfg.name}"${listed ? ' with another key than identity.secretKeyFile\'s' : ''}; ask the federation authority for the current list`);
    }
    const signer = cfg.federationId ? createRequestSigner({ federationId: cfg.federationId, identity, random: cryptoRandomBytes }) : undefined;
    if (!signer) log.warn({ event: 'auth.unsigned', message: 'federationId is not set: requests are not signed and a coordinator with enrolled clients will refuse them' });
    // The composition root (build-client.ts): guards, trainer stack and client loop, as `simulate` builds them.
    const node = await buildClient({
      name: cfg.name,
      coordinator: { address: cfg.coordinator, federationId: cfg.federationId, credentials, serverName: cfg.tls?.serverName, signer },
      // One key for everything: it signs requests, both ledgers, and is the SecAgg identity.
      secretKey: identity.secretKey,
      budgets: {
        // Both budgets: the institution's own signed ledgers in dataDir.
        ...(cfg.privacy ? { institution: { ledgerPath: join(cfg.dataDir, 'privacy-ledger.jsonl'), epsilon: cfg.privacy.epsilon, delta: cfg.privacy.delta } } : {}),
        ...(recordBudget ? { record: { ledgerPath: join(cfg.dataDir, 'record-ledger.jsonl'), ...recordBudget, unit } } : {}),
      },
      ...(cfg.privacy?.policy ? { privacyPolicy: cfg.privacy.policy } : {}),
      trainer: ({ record }) => {
        if (record) log.info({ event: 'privacy.budget', unit: record.unitLabel, epsilonSpent: record.spent(), budget: recordBudget, ledger: record.ledgerPath });
        return new PlanFollowingTrainer(model, documents, {
          evalFraction: cfg.data.evalFraction,
          defaultSeqLen: cfg.training.seqLen ?? 64,
          seed: cfg.name,
          log,
          dpSgd: cfg.dpSgd ? { ...dpSgdTrainerSettings(cfg.dpSgd), guard: record, unit, ...(recordBudget ? { budget: { ...recordBudget, ...(cfg.dpSgd.rounds ? { rounds: cfg.dpSgd.rounds } : {}) } } : {}) } : undefined,
          ...(instruct ? { instruct } : {}),
        });
      },
      ...(evalSets ? { evaluation: { model, sets: evalSets } } : {}),
      // Secure aggregation uses the same enrolled Ed25519 identity that signs requests; rosters are held against the signed member list.
      secure: { identitySecretKey: identity.secretKey, members, minimums: cfg.secagg, rng: cryptoRandomBytes, noiseFor: (plan) => noiseShareFor(plan, cryptoRandomBytes) },
      runner: {
        backoffMs: { initial: cfg.reconnect.initialBackoffMs, max: cfg.reconnect.maxBackoffMs },
        maxRetries: reconnectRetries(cfg.reconnect.giveUpAfterSeconds * 1000, cfg.reconnect.initialBackoffMs, cfg.reconnect.maxBackoffMs),
      },
      logger: log,
    });
    // Institution-level DP: every update is clipped to the plan's bound and recorded in the institution's ledger.
    const guard = node.guards.institution;
    if (guard) log.info({ event: 'privacy.budget', epsilonSpent: guard.spent(), budget: { epsilon: cfg.privacy!.epsilon, delta: cfg.privacy!.delta }, policy: cfg.privacy!.policy, ledger: guard.ledgerPath });
    try {
      const r = await node.run(signal);
      return { ...r, backend: backend.name };
    } finally {
      wipeIdentity(identity);
    }
  } finally {
    if (!shared) model.dispose();
  }
}


/** The held-out sets of federated evaluation named in the config (data.evalMcq, data.generalText), if any. */
async function federatedEvalSets(model: CausalLM, cfg: ClientConfig): Promise<FederatedEvalSets | undefined> {
  if (!cfg.data.evalMcq && !cfg.data.generalText) return undefined;
  const mcq = cfg.data.evalMcq ? (await readJsonl(cfg.data.evalMcq)).map((r, i) => parseMcqItem(r, `${cfg.data.evalMcq}: record ${i + 1}`)) : undefined;
  // At most 32 windows of the general text: enough for a stable loss, cheap every round.
  const general = cfg.data.generalText ? tokenizeToSequences(model, await readFile(cfg.data.generalText, 'utf8'), cfg.training.seqLen ?? 64).slice(0, 32) : undefined;
  return { ...(mcq ? { mcq } : {}), ...(general ? { general } : {}) };
}
