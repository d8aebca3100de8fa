/**
 * Carrying a signed request envelope in gRPC metadata, so every RPC (unary or streaming) is
 * authenticated the same way without touching the message schema. Keys are lowercase ASCII;
 * the signature travels as binary metadata (`-bin`).
 */
import { Metadata } from '@grpc/grpc-js';
import type { RequestEnvelope } from './request-signing.js';
import { signRequest } from './request-signing.js';

/** Metadata keys used for the envelope. */
export const AUTH_METADATA_KEYS = {
  federationId: 'fedlora-federation',
  clientName: 'fedlora-client',
  round: 'fedlora-round',
  bodyHash: 'fedlora-body-sha256',
  nonce: 'fedlora-nonce',
  timestamp: 'fedlora-timestamp',
  signature: 'fedlora-signature-bin',
} as const;

/** Signs `env` and writes envelope and signature into `metadata` (a new Metadata by default). The method is not sent: the server knows it. */
export function signedMetadata(env: RequestEnvelope, secretKey: Uint8Array, metadata = new Metadata()): Metadata {
  const signature = signRequest(env, secretKey);
  metadata.set(AUTH_METADATA_KEYS.federationId, env.federationId);
  metadata.set(AUTH_METADATA_KEYS.clientName, env.clientName);
  metadata.set(AUTH_METADATA_KEYS.round, String(env.round));
  metadata.set(AUTH_METADATA_KEYS.bodyHash, env.bodyHash);
  metadata.set(AUTH_METADATA_KEYS.nonce, env.nonce);
  metadata.set(AUTH_METADATA_KEYS.timestamp, String(env.timestamp));
  metadata.set(AUTH_METADATA_KEYS.signature, Buffer.from(signature));
  return metadata;
}

/**
 * Reads the envelope back on the server. `method` comes from the call (`call.getPath()`), never
 * from the client. Missing or ill-typed fields yield values `RequestVerifier` reports as malformed.
 */
export function envelopeFromMetadata(metadata: Metadata, method: string): { envelope: Partial<RequestEnvelope>; signature: Uint8Array | undefined } {
  const text = (key: string): string | undefined => {
    const v = metadata.get(key);
    return v.length === 1 && typeof v[0] === 'string' ? v[0] : undefined;
  };
  const int = (key: string): number | undefined => {
    const s = text(key);
    return s !== undefined && /^\d{1,16}$/.test(s) ? Number(s) : undefined;
  };
  const sig = metadata.get(AUTH_METADATA_KEYS.signature);
  return {
    envelope: {
      federationId: text(AUTH_METADATA_KEYS.federationId),
      clientName: text(AUTH_METADATA_KEYS.clientName),
      round: int(AUTH_METADATA_KEYS.round),
      method,
      bodyHash: text(AUTH_METADATA_KEYS.bodyHash),
      nonce: text(AUTH_METADATA_KEYS.nonce),
      timestamp: int(AUTH_METADATA_KEYS.timestamp),
    },
    signature: sig.length === 1 && Buffer.isBuffer(sig[0]) ? new Uint8Array(sig[0]) : undefined,
  };
}
