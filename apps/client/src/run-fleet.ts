/**
 * `fedlora client --fleet FILE`: many institutions' nodes in one process against a real
 * coordinator, so a large simulation spans machines (one fleet process per machine or pod).
 * Each institution is exactly the node `fedlora client --config` runs (run-from-config.ts):
 * its own identity key, TLS client certificate, signed-request signer, member list check,
 * privacy policy, budget guard and signed ledger in its own dataDir; only the read-only base
 * model is loaded once and shared. One institution that fails or stops does not stop the others.
 */
import { DEFAULT_BASE_MODEL_DIR, initBackend, loadModel } from '@fedlora/model';
import type { EventLogger } from '@fedlora/federation';
import type { ClientConfig } from './config.js';
import { runClientFromConfig } from './run-from-config.js';

/** How one institution of a fleet ended. */
export interface FleetMemberResult {
  client: string;
  roundsTrained: number[];
  /** Why it stopped before the federation finished (its own stop, or an error). */
  stopped?: string;
  /** True when it ended with an error (the fleet's exit status is then non-zero). */
  failed?: boolean;
}

/** Runs every institution of the fleet until each has finished, stopped or failed. */
export async function runFleet(configs: ClientConfig[], loggerFor: (cfg: ClientConfig) => EventLogger, signal?: AbortSignal): Promise<{ backend: string; institutions: FleetMemberResult[] }> {
  if (configs.length === 0) throw new RangeError('a fleet needs at least one institution');
  const first = configs[0]!;
  const backend = await initBackend({ backend: first.training.backend === 'auto' ? undefined : first.training.backend });
  const model = await loadModel(first.model.baseModelDir ?? DEFAULT_BASE_MODEL_DIR);
  try {
    const runs = configs.map(async (cfg): Promise<FleetMemberResult> => {
      const log = loggerFor(cfg);
      try {
        const r = await runClientFromConfig(cfg, log, signal, { model });
        return { client: cfg.name, roundsTrained: r.roundsTrained, ...(r.stopped ? { stopped: r.stopped } : {}) };
      } catch (err) {
        const message = (err as Error).message;
        log.error({ event: 'client.failed', client: cfg.name, reason: message });
        return { client: cfg.name, roundsTrained: [], stopped: message, failed: true };
      }
    });
    return { backend: backend.name, institutions: await Promise.all(runs) };
  } finally {
    model.dispose();
  }
}
