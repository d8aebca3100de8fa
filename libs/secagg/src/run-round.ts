import type { UsedKeyRegistry } from './server.js';
import type { RandomBytes } from '@fedlora/tensor';
import { SecAggClient, generateIdentity } from './client.js';
import { SecAggError } from './errors.js';
import { STAGES, type Stage } from './messages.js';
import { SecAggServer, type SecAggResult } from './server.js';

/**
 * An in-process driver for one SecAgg+ round: the reference for how a transport should move
 * the bytes (poll -> client.handle -> server.handle, then advance at the stage deadline), and
 * the harness for protocol tests, simulations and benchmarks. Dropouts are injected per client
 * as "vanishes before sending its message for stage S".
 */

/** Inputs of `runSecAggRound`. */
export type RunRoundOptions = {
  round: number;
  /** Encoded input per client id (all of the same length); `get` is called once per client, just before it masks, so a lazy map keeps memory flat. */
  inputs: Pick<ReadonlyMap<number, Uint32Array>, 'keys' | 'get'>;
  /** Input length (default: the length of the first input). */
  dim?: number;
  k: number;
  t: number;
  rng: RandomBytes;
  /** Client id -> the stage at which it vanishes (sends nothing from then on). */
  dropAt?: ReadonlyMap<number, Stage>;
  /** Words per masked-input chunk; chunks travel as serialized messages unless `directChunks`. */
  chunkWords?: number;
  /** Hand masked chunks to `addMaskedChunk` without serializing (faster, for benchmarks). */
  directChunks?: boolean;
  /** Client id -> words uploaded before it vanishes mid-upload (then it sends nothing more). */
  vanishMidUpload?: ReadonlyMap<number, number>;
  /** See SecAggServerConfig.stagedUploads. */
  stagedUploads?: number;
  /** Fewest survivors the clients let a sum be unmasked with (SecAggClientConfig.minSurvivors); the server is not told. */
  clientMinSurvivors?: number;
  /** Fewest survivors the server unmasks (SecAggServerConfig.minSurvivors). */
  serverMinSurvivors?: number;
  /** Keys used in earlier rounds (see SecAggServerConfig.usedKeys). */
  usedKeys?: UsedKeyRegistry;
  /** Ed25519 identities per client (generated from `rng` when absent). */
  identities?: ReadonlyMap<number, { publicKey: Uint8Array; secretKey: Uint8Array }>;
  /** Called when every client has had its turn in a stage, just before `advance()` (timing probes). */
  onBeforeAdvance?: (stage: Stage, server: SecAggServer) => void;
  /** Called after each stage closes (timing and memory probes). */
  onStage?: (stage: Stage, server: SecAggServer) => void;
};

/** Outcome of a round: the result, or the abort error; never both. */
export type RunRoundOutcome = {
  result?: SecAggResult;
  aborted?: SecAggError;
  server: SecAggServer;
  /** Clients that refused to continue (e.g. too few neighbours left), with the failed check. */
  clientAborts: Map<number, SecAggError>;
};

/** Runs one full round in-process. */
export function runSecAggRound(opts: RunRoundOptions): RunRoundOutcome {
  const ids = [...opts.inputs.keys()].sort((a, b) => a - b);
  const dim = opts.dim ?? opts.inputs.get(ids[0]!)!.length;
  const identities = opts.identities ?? new Map(ids.map((id) => [id, generateIdentity(opts.rng)]));
  const roster = new Map([...identities].map(([id, kp]) => [id, kp.publicKey]));
  const server = new SecAggServer({ round: opts.round, cohort: ids, identities: roster, k: opts.k, t: opts.t, dim, rng: opts.rng, usedKeys: opts.usedKeys, stagedUploads: opts.stagedUploads, minSurvivors: opts.serverMinSurvivors });
  const clients = new Map(
    ids.map((id) => [id, new SecAggClient({ round: opts.round, clientId: id, identitySecretKey: identities.get(id)!.secretKey, identities: roster, rng: opts.rng, minSurvivors: opts.clientMinSurvivors })]),
  );
  const gone = new Set<number>();
  const clientAborts = new Map<number, SecAggError>();
  for (const stage of STAGES) {
    for (const id of ids) {
      if (gone.has(id)) continue;
      if (opts.dropAt?.get(id) === stage) {
        gone.add(id);
        continue;
      }
      const r = server.poll(id);
      if (r.kind !== 'message') continue;
      const client = clients.get(id)!;
      if (stage === 'collect') client.setInput(opts.inputs.get(id)!);
      let reply: ReturnType<SecAggClient['handle']>;
      try {
        reply = client.handle(r.bytes);
      } catch (e) {
        if (!(e instanceof SecAggError)) throw e;
        clientAborts.set(id, e); // the client aborted its round: to the server it simply vanished
        gone.add(id);
        continue;
      }
      if (reply.kind === 'send') server.handle(id, reply.stage, reply.bytes);
      else if (reply.kind === 'masked-input') {
        const cw = opts.chunkWords ?? 65_536;
        const cut = opts.vanishMidUpload?.get(id);
        if (cut !== undefined) {
          for (let o = 0; o < cut; o += cw) server.addMaskedChunk(id, o, reply.masked.subarray(o, Math.min(o + cw, cut)));
          gone.add(id);
        } else if (opts.directChunks) for (let o = 0; o < reply.masked.length; o += cw) server.addMaskedChunk(id, o, reply.masked.subarray(o, o + cw));
        else for (const chunk of reply.chunks(cw)) server.handle(id, 'collect', chunk);
      }
    }
    opts.onBeforeAdvance?.(stage, server);
    const next = server.advance();
    opts.onStage?.(stage, server);
    if (next === 'aborted') break;
  }
  if (server.error) return { aborted: server.error, server, clientAborts };
  return { result: server.result(), server, clientAborts };
}
