/**
 * Request-signature metadata for the fuzz test when the server verifies every request: the
 * insider's hostile messages are properly signed (so they reach the handlers behind the
 * signature gate), and everything else carries missing, garbage, mismatched or replayed
 * envelopes that the gate must refuse without crashing.
 */
import * as grpc from '@grpc/grpc-js';
import { AUTH_METADATA_KEYS, type RequestSigner } from '@fedlora/transport-grpc';
import type { HostileCall } from './grpc-calls.js';
import type { Dice } from './hostile-cases.js';

/** The round a request claims, read back from its first frame as the server will (0 when none). */
function claimedRound(def: grpc.ServiceDefinition, c: HostileCall): number {
  const first = c.frames[0];
  if (!first) return 0;
  try {
    const msg = def[c.method]!.requestDeserialize(first) as { round?: number; header?: { round?: number } | null };
    return Number(msg.header?.round ?? msg.round ?? 0);
  } catch {
    return 0;
  }
}

/** Signs each call's first frame as `signer`'s client, for the round that frame claims. */
export function signed(def: grpc.ServiceDefinition, service: string, signer: RequestSigner, calls: HostileCall[]): HostileCall[] {
  return calls.map((c) => {
    const first = c.frames[0];
    if (!first) return c;
    const round = claimedRound(def, c);
    return { ...c, metadata: () => signer(`/${service}/${c.method}`, round, first) };
  });
}

/**
 * Gives each call hostile authentication metadata: none, garbage in every field, or a valid
 * signature over another body or for another method.
 */
export function withHostileAuth(d: Dice, service: string, signer: RequestSigner, calls: HostileCall[]): HostileCall[] {
  return calls.map((c) => {
    const path = `/${service}/${c.method}`;
    const variants: Array<() => grpc.Metadata> = [
      () => new grpc.Metadata(),
      () => {
        const m = new grpc.Metadata();
        m.set(AUTH_METADATA_KEYS.federationId, d.pick(['fed-fuzz', '', 'x'.repeat(300)]));
        m.set(AUTH_METADATA_KEYS.clientName, d.pick(['mallory', 'honest-1', 'ghost', '']));
        m.set(AUTH_METADATA_KEYS.round, d.pick(['0', '-1', '1e9', '99999999999999999', 'NaN']));
        m.set(AUTH_METADATA_KEYS.bodyHash, d.pick(['', 'ab'.repeat(32), 'zz'.repeat(32)]));
        m.set(AUTH_METADATA_KEYS.nonce, d.pick(['', d.bytes(16).toString('hex'), 'g'.repeat(32)]));
        m.set(AUTH_METADATA_KEYS.timestamp, d.pick([String(Date.now()), '0', '99999999999999999', 'soon']));
        m.set(AUTH_METADATA_KEYS.signature, d.bytes(d.pick([0, 63, 64, 65, 4096])));
        return m;
      },
      () => signer(path, 0, Buffer.from('some other body')),
      () => signer(`/${service}/GetStatus`, 0, c.frames[0] ?? Buffer.alloc(0)),
    ];
    return { ...c, metadata: d.pick(variants) };
  });
}

/** `count` replays of a request (frame and signed metadata) the server has already accepted once. */
export function replays(method: string, frame: Buffer, used: grpc.Metadata, count: number): HostileCall[] {
  return Array.from({ length: count }, () => ({ method, shape: 'unary' as const, frames: [frame], label: 'replayed signed request', expect: 'refused' as const, metadata: () => used.clone() }));
}
