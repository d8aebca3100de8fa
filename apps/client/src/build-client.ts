/**
 * The client's composition root: one institution's node, built from an in-memory spec.
 * `fedlora client` builds the spec from its YAML (run-from-config.ts); `fedlora simulate` builds
 * one per simulated institution. Both then run the same stack, in the same order:
 *
 *   local trainer (the caller's: plain, or DP-SGD spending from the record-level guard)
 *   -> federated evaluation of the global adapter (optional)
 *   -> institution-level privacy guard: own policy, own budget, clip, own signed ledger
 *   -> (simulations: recorders of what was sent)
 *   -> the client loop over gRPC (register, plan checks, download, train, upload or SecAgg+).
 */
import type * as grpc from '@grpc/grpc-js';
import type { CausalLM, LoraConfig } from '@fedlora/model';
import type { ClientPrivacyPolicy, ClientRunnerOptions, CoordinatorConnection, EventLogger, LocalTrainer, RoundPlan, SecureClientOptions } from '@fedlora/federation';
import { runClient } from '@fedlora/federation';
import type { ClientPrivacyGuard } from '@fedlora/privacy';
import type { RequestSigner } from '@fedlora/transport-grpc';
import { GrpcConnection } from '@fedlora/transport-grpc';
import type { ClientGuardsOptions } from './client-guards.js';
import { openClientGuards } from './client-guards.js';
import type { FederatedEvalSets } from './federated-eval.js';
import { EvaluatingTrainer } from './federated-eval.js';
import { PrivacyGuardedTrainer } from './privacy-trainer.js';

/** An institution's privacy guards, opened from its budgets (either may be absent). */
export interface OpenedGuards {
  institution?: ClientPrivacyGuard;
  record?: ClientPrivacyGuard;
}

/** Everything one institution's node is built from, already validated. */
export interface ClientSpec {
  name: string;
  /** Where and how to dial the coordinator (plaintext without `credentials`). */
  coordinator: { address: string; federationId?: string; credentials?: grpc.ChannelCredentials; serverName?: string; signer?: RequestSigner; channel?: grpc.Channel; connection?: CoordinatorConnection };
  /** The institution's Ed25519 secret key: signs both of its ledgers. */
  secretKey: Uint8Array;
  /** Institution-level and record-level budgets, each with its signed ledger. */
  budgets?: Pick<ClientGuardsOptions, 'institution' | 'record'>;
  /** The institution's own privacy policy that every plan is held against (default: the strict one). */
  privacyPolicy?: ClientPrivacyPolicy;
  /** The local trainer on the institution's data; DP-SGD spends from the record-level guard. */
  trainer: (guards: OpenedGuards) => LocalTrainer;
  /** Federated evaluation: every global adapter scored on these held-out sets before training. */
  evaluation?: { model: CausalLM; sets: FederatedEvalSets; loraOf?: (plan: RoundPlan) => LoraConfig };
  /** Identity, signed member list, minimums and noise for secure aggregation; without it the node cannot take part in secure rounds. */
  secure?: SecureClientOptions;
  /** Wraps the guarded trainer (simulations record what each institution sent). */
  wrapTrainer?: (trainer: LocalTrainer) => LocalTrainer;
  /** Poll, heartbeat and reconnect settings of the client loop. */
  runner?: Pick<ClientRunnerOptions, 'pollMs' | 'heartbeatMs' | 'backoffMs' | 'maxRetries' | 'onRoundTrained' | 'untilIdle'>;
  logger: EventLogger;
}

/** A built node: its guards and trainer stack, ready to run. */
export interface BuiltClient {
  readonly guards: OpenedGuards;
  readonly trainer: LocalTrainer;
  /** Runs the client loop until the federation finishes, the client stops, or `signal` aborts; closes its connection. */
  run(signal?: AbortSignal): Promise<{ roundsTrained: number[]; stopped?: string }>;
}

/** Builds an institution's node from its spec (see the module comment for the stack). */
export async function buildClient(spec: ClientSpec): Promise<BuiltClient> {
  const opened = await openClientGuards({ name: spec.name, secretKey: spec.secretKey, ...spec.budgets });
  const guards: OpenedGuards = { ...(opened.institution ? { institution: opened.institution } : {}), ...(opened.record ? { record: opened.record } : {}) };
  const base = spec.trainer(guards);
  const evaluated = spec.evaluation ? new EvaluatingTrainer(base, spec.evaluation.model, spec.evaluation.sets, spec.evaluation.loraOf) : base;
  // Institution-level DP: every plan held against the policy and budget, every update clipped and recorded.
  const guarded = new PrivacyGuardedTrainer(evaluated, guards.institution, undefined, spec.privacyPolicy);
  const trainer = spec.wrapTrainer ? spec.wrapTrainer(guarded) : guarded;
  return {
    guards,
    trainer,
    run: async (signal) => {
      const c = spec.coordinator;
      // A population or fleet hands each node the session it already holds (one shared channel, one token).
      const connection = c.connection ?? new GrpcConnection({ address: c.address, federationId: c.federationId, credentials: c.credentials, serverName: c.serverName, signer: c.signer, ...(c.channel ? { channel: c.channel } : {}) });
      try {
        return await runClient({ name: spec.name, connection, trainer, ...(spec.secure ? { secure: spec.secure } : {}), logger: spec.logger, signal, ...spec.runner });
      } finally {
        if (!c.connection) connection.close();
      }
    },
  };
}
