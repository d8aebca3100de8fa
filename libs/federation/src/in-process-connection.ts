import { cloneNamed } from '@fedlora/tensor';
import type { CoordinatorConnection } from './client-runner.js';
import type { FederationCoordinator } from './coordinator.js';

/**
 * A connection that calls the coordinator directly (no wire): whole rounds run in-process in
 * unit tests with the same code the gRPC transport drives. Tensors are copied both ways, as a
 * wire would, so neither side can alias the other's buffers.
 */
export function inProcessConnection(coordinator: FederationCoordinator): CoordinatorConnection {
  let id = '';
  let token = '';
  return {
    async register(name, numExamples) {
      const r = coordinator.register(name, numExamples);
      id = r.clientId;
      token = r.sessionToken;
      return { clientId: id };
    },
    getTask: (waitMs) => coordinator.getTask(id, token, waitMs),
    async downloadAdapter(round) {
      return cloneNamed(coordinator.getAdapter(id, token, round).adapter);
    },
    async uploadUpdate(update) {
      coordinator.submitUpdate(id, token, { header: update.header, delta: cloneNamed(update.delta) });
    },
    async decline(round, reason) {
      coordinator.decline(id, token, round, reason);
    },
    async heartbeat(round) {
      return coordinator.heartbeat(id, token, round);
    },
    async secAggExchange(round, nonce, stage, payload, report, waitMs) {
      const r =
        payload.length === 0 && (waitMs ?? 0) > 0
          ? await coordinator.secAggPoll(id, token, round, nonce, waitMs!)
          : coordinator.secAggExchange(id, token, round, nonce, stage, new Uint8Array(payload), report);
      return { ...r, payload: new Uint8Array(r.payload) };
    },
    close() {},
  };
}
