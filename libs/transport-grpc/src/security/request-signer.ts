/**
 * Client side of request authentication: one object per connection that turns (method, round,
 * body) into signed gRPC metadata with a fresh nonce and the current time.
 */
import type { RandomBytes } from '@fedlora/tensor';
import type { Metadata } from '@grpc/grpc-js';
import { signedMetadata } from './auth-metadata.js';
import type { Identity } from './identity.js';
import { hashBody, newNonce } from './request-signing.js';

/** Options of `createRequestSigner`. */
export interface RequestSignerOptions {
  federationId: string;
  identity: Identity;
  /** Nonce source (cryptoRandomBytes in production). */
  random: RandomBytes;
  /** Clock, ms since the epoch (default Date.now). */
  now?: () => number;
}

/** Signs one request: the full gRPC method path, the round it concerns and the serialized body. */
export type RequestSigner = (method: string, round: number, body: Uint8Array, metadata?: Metadata) => Metadata;

/** Builds a RequestSigner bound to one identity and federation. */
export function createRequestSigner(o: RequestSignerOptions): RequestSigner {
  const now = o.now ?? Date.now;
  if (!o.identity.name) throw new RangeError('identity.name: expected the enrolled client name, received ""');
  return (method, round, body, metadata) =>
    signedMetadata(
      { federationId: o.federationId, clientName: o.identity.name, round, method, bodyHash: hashBody(body), nonce: newNonce(o.random), timestamp: Math.floor(now()) },
      o.identity.secretKey,
      metadata,
    );
}
